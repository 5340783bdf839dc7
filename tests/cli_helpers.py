"""Helpers of the command-line tests (test_cli.py, test_runs.py): the CLI run in this process, one-line refusals,
file snapshots, small logs, and a finished run on ids that need care."""
import contextlib, hashlib, io
from pathlib import Path
from interest_llm.cli import main

QUICK = ['--quick', '--no-llm', '--baselines', 'none', '--epochs', '1', '--no-progress']
T0 = 1_600_000_000
ITEMS = ['007', '7', '12.0', 'X99', 'i4', 'i5', 'i6', 'i7', 'i8', 'i9']

def cli(capsys, *argv):
    "(exit status, stdout, stderr) of `interest-llm *argv` run in this process."
    try: main([str(a) for a in argv]); code = 0
    except SystemExit as e: code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(res, *needles):
    "Exit status 2 and one line `interest-llm: error: ...` containing every needle."
    code, out, err = res
    assert code == 2, (code, out[-2000:], err[-2000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('interest-llm: error: '), err
    for n in needles: assert n in lines[0], (n, lines[0])
    return lines[0]


def snapshot(folder) -> dict:
    "{relative path: sha256} of every file below `folder`."
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob('*')) if p.is_file()}


def write_csv(path, header, rows, sep=',', encoding='utf-8'):
    Path(path).write_bytes(('\n'.join([sep.join(header)] + [sep.join(map(str, r)) for r in rows]) + '\n').encode(encoding))
    return path


def log_rows(items, n_users=12, n_events=6, t0=T0):
    "Every user buys n_events distinct items of `items` (a rotating window), one hour apart; users a day apart."
    return [(f'u{u}', items[(u + e) % len(items)], t0 + 86400 * u + 3600 * e) for u in range(n_users) for e in range(n_events)]


def train_on_awkward_ids(d):
    """A finished run on a log whose ids need care (007 and 7, 12.0 beside X99), with 5 exactly repeated events and an
    items file with a blank text and a conflicting duplicate; returns (folder, stdout of train, log rows)."""
    rows = log_rows(ITEMS)
    write_csv(d / 'log.csv', ('user', 'item', 'timestamp'), rows + rows[:5])
    texts = [(i, f'text of {i}') for i in ITEMS]
    texts[4] = ('i4', '')                                        # blank: filled, and said so
    write_csv(d / 'items.csv', ('item', 'text'), texts + [('i5', 'another text of i5')])   # conflicting duplicate
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main([str(a) for a in ['train', '--interactions', d / 'log.csv', '--items', d / 'items.csv', *QUICK, '--out', d / 'run']])
    return d / 'run', out.getvalue(), rows
