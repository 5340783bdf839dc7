"""Issue 14, "nothing silently wrong": adversarial input, interrupted runs and mixed-up run folders, each fed through
the command line a user runs (`interest_llm.cli.main`, as the `interest-llm` script calls it).

Every refusal is checked to be one line `interest-llm: error: ...` with exit status 2 that names the file, column or
option and the fix, and — where files exist — that nothing on disk was lost. Training runs use the tiny
configuration (`--quick --no-llm --epochs 1`), so the whole file takes a minute or two.
"""
import contextlib, errno, gzip, hashlib, io, json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np, pandas as pd, pytest, torch

import interest_llm.runs as runs_mod
from interest_llm.cli import main
from interest_llm.data import SplitData
from interest_llm.runs import load_run, partial_dir
from interest_llm.tracker import InterestTracker

QUICK = ['--quick', '--no-llm', '--baselines', 'none', '--epochs', '1', '--no-progress']
T0 = 1_600_000_000

@pytest.fixture(autouse=True, scope='module')
def one_thread():
    nt = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(nt)

# ------------------------------------------------------------------------------------------------ helpers
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

ITEMS = ['007', '7', '12.0', 'X99', 'i4', 'i5', 'i6', 'i7', 'i8', 'i9']

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A finished run on a log whose ids need care (007 and 7, 12.0 beside X99), with 5 exactly repeated events and an
    items file with a blank text and a conflicting duplicate; returns (folder, stdout of train, log rows)."""
    d = tmp_path_factory.mktemp('trained')
    rows = log_rows(ITEMS)
    write_csv(d / 'log.csv', ('user', 'item', 'timestamp'), rows + rows[:5])
    texts = [(i, f'text of {i}') for i in ITEMS]
    texts[4] = ('i4', '')                                        # blank: filled, and said so
    write_csv(d / 'items.csv', ('item', 'text'), texts + [('i5', 'another text of i5')])   # conflicting duplicate
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main([str(a) for a in ['train', '--interactions', d / 'log.csv', '--items', d / 'items.csv', *QUICK, '--out', d / 'run']])
    return d / 'run', out.getvalue(), rows

# ------------------------------------------------------------------------------------------------ 1. options first
@pytest.mark.parametrize('opt, val, msg', [
    ('--epochs', '0', '--epochs must be an integer >= 1, got 0'), ('--batch-size', '0', '--batch-size must be an integer >= 1'),
    ('--lr', '-0.01', '--lr must be a finite number > 0'), ('--lr', 'nan', '--lr must be a finite number > 0, got nan'),
    ('--dropout', '2', '--dropout must be in [0, 1)'), ('--hidden', '0', '--hidden must be an integer >= 1'),
    ('--max-len', '0', '--max-len must be an integer >= 1'), ('--beta', '-1', '--beta must be a finite number >= 0'),
    ('--threads', '0', '--threads must be an integer >= 1'), ('--max-users', '0', '--max-users must be an integer >= 1'),
    ('--encoding', 'no-such-codec', "--encoding 'no-such-codec' is not a known text encoding")])
def test_bad_train_option_is_refused_before_any_data_is_read(tmp_path, capsys, opt, val, msg):
    "The log does not even exist: the option is named, not the file, so nothing was read; no run folder is left."
    refused(cli(capsys, 'train', '--interactions', tmp_path / 'missing.csv', '--out', tmp_path / 'run', opt, val), msg)
    assert not (tmp_path / 'run').exists() and not partial_dir(tmp_path / 'run').exists()

@pytest.mark.parametrize('argv, msg', [(['-k', '0'], '-k must be an integer >= 1, got 0'), (['-k', '-1'], '-k must be an integer >= 1, got -1'),
                                       (['--texts', ''], '--texts: text 1 is empty'), (['--texts', 'a mug', '  '], '--texts: text 2 is empty')])
def test_bad_recommend_option_is_refused_before_the_run_is_read(tmp_path, capsys, argv, msg):
    who = [] if '--texts' in argv else ['--user', 'u0']
    refused(cli(capsys, 'recommend', tmp_path / 'no-such-run', *who, *argv), msg)

def test_bad_option_from_the_console_is_one_line_without_traceback(tmp_path):
    p = subprocess.run([sys.executable, '-c', 'from interest_llm.cli import main; main()', 'train', '--epochs', '0',
                        '--out', str(tmp_path / 'r')], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == ["interest-llm: error: --epochs must be an integer >= 1, got 0"], p.stderr

# ------------------------------------------------------------------------------------------------ 2. embed reads the user's files
def test_embed_interactions_implies_dataset_file(tmp_path, capsys, monkeypatch):
    from interest_llm.llm import make_tiny_model
    llm = make_tiny_model(tmp_path / 'llm')
    write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), [('a', 'p2', 1), ('a', 'p1', 2), ('b', 'p3', 3)])
    write_csv(tmp_path / 'items.csv', ('item', 'text'), [('p1', 'red mug'), ('p2', 'blue cup'), ('p3', 'green pot')])
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(tmp_path / 'cache'))
    info = main(['embed', '--interactions', str(tmp_path / 'log.csv'), '--items', str(tmp_path / 'items.csv'), '--llm-model', str(llm),
                 '--out', str(tmp_path / 'e.safetensors')])
    assert info['dataset'] == 'file' and info['item_ids'] == ['<pad>', 'p1', 'p2', 'p3'] and info['shape'][0] == 4
    refused(cli(capsys, 'embed', '--items', tmp_path / 'items.csv', '--out', tmp_path / 'f.safetensors'), '--items needs --interactions')

# ------------------------------------------------------------------------------------------------ 3. ids as written
def test_item_ids_are_kept_exactly_as_written(trained):
    run, _, rows = trained
    split = SplitData.load(run / 'split')
    assert sorted(split.item_ids[1:].tolist()) == sorted(ITEMS)              # 007 and 7 two items; 12.0 kept as written
    items = pd.read_csv(run / 'items.csv.gz', dtype=str, keep_default_na=False)
    text = dict(zip(items['item'], items['text']))
    assert text['007'] == 'text of 007' and text['7'] == 'text of 7' and text['12.0'] == 'text of 12.0' and text['X99'] == 'text of X99'
    u = list(split.users).index('u0')
    assert split.item_ids[split.seqs[u]].tolist() == [r[1] for r in rows if r[0] == 'u0']

# ------------------------------------------------------------------------------------------------ 4. dates
DAYFIRST = ['02/01/2021 10:00', '01/02/2021 10:00', '03/02/2021 10:00', '05/02/2021 10:00', '13/03/2021 10:00']

def _dated_log(path, dates, n_users=10):
    return write_csv(path, ('user', 'item', 'when'), [(f'u{u}', f'i{(u + e) % 8}', d) for u in range(n_users) for e, d in enumerate(dates)])

def _sequences_in_file_order(run, dates):
    split = SplitData.load(run / 'split')
    for u, name in enumerate(split.users):
        k = int(name[1:])
        assert split.item_ids[split.seqs[u]].tolist() == [f'i{(k + e) % 8}' for e in range(len(dates))], name
        assert (np.diff(split.times[u]) > 0).all()

def test_day_first_dates_are_read_day_first_in_every_row(tmp_path, capsys):
    "13/03 tells the order, so 02/01 and 01/02 are 2 January and 1 February: the sequences keep the file's order."
    log = _dated_log(tmp_path / 'log.csv', DAYFIRST)
    code, out, err = cli(capsys, 'train', '--interactions', log, '--time-col', 'when', *QUICK, '--out', tmp_path / 'run')
    assert code == 0, err
    _sequences_in_file_order(tmp_path / 'run', DAYFIRST)
    split = SplitData.load(tmp_path / 'run' / 'split')
    assert pd.to_datetime(split.times[0][0], unit='s') == pd.Timestamp('2021-01-02 10:00')
    refused(cli(capsys, 'train', '--interactions', log, '--time-col', 'when', '--monthfirst', *QUICK, '--out', tmp_path / 'r2'),
            str(log), "column 'when'", "'13/03/2021 10:00' is not a month-first date", '--dayfirst')

def test_ambiguous_dates_need_dayfirst_or_monthfirst(tmp_path, capsys):
    dates = [d.replace('13/03', '12/03') for d in DAYFIRST]             # no day above 12: no value tells the order
    log = _dated_log(tmp_path / 'log.csv', dates)
    refused(cli(capsys, 'train', '--interactions', log, '--time-col', 'when', *QUICK, '--out', tmp_path / 'run'),
            str(log), "column 'when'", 'can be read day-first or month-first', '--dayfirst or --monthfirst')
    assert not (tmp_path / 'run').exists() and not partial_dir(tmp_path / 'run').exists()
    code, _, err = cli(capsys, 'train', '--interactions', log, '--time-col', 'when', '--dayfirst', *QUICK, '--out', tmp_path / 'run')
    assert code == 0, err
    _sequences_in_file_order(tmp_path / 'run', dates)

def test_dates_mixing_both_orders_are_refused(tmp_path, capsys):
    log = _dated_log(tmp_path / 'log.csv', ['13/01/2021', '01/14/2021', '20/01/2021', '21/01/2021', '22/01/2021'])
    refused(cli(capsys, 'train', '--interactions', log, '--time-col', 'when', *QUICK, '--out', tmp_path / 'run'),
            str(log), "column 'when'", 'day-first in some rows', 'month-first in others')

def test_epoch_milliseconds_are_detected_and_converted(tmp_path, capsys):
    rows = [(u, i, t * 1000) for u, i, t in log_rows(ITEMS)]
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), rows)
    code, out, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run')
    assert code == 0, err
    assert 'values look like epoch milliseconds' in out and "column 'timestamp'" in out
    split = SplitData.load(tmp_path / 'run' / 'split')
    assert sorted(np.concatenate(split.times).tolist()) == sorted(t // 1000 for _, _, t in rows)

def test_mixed_time_zones_are_converted_to_utc_and_said(tmp_path, capsys):
    rows = log_rows(ITEMS)
    iso = [(u, i, pd.Timestamp(t, unit='s', tz='UTC').tz_convert('Europe/Paris').isoformat() if k % 2 else
            pd.Timestamp(t, unit='s').strftime('%Y-%m-%dT%H:%M:%SZ')) for k, (u, i, t) in enumerate(rows)]
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), iso)
    code, out, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run')
    assert code == 0, err
    assert 'mixed time zones' in out and 'converted to UTC' in out
    split = SplitData.load(tmp_path / 'run' / 'split')
    assert sorted(np.concatenate(split.times).tolist()) == sorted(t for _, _, t in rows)

def test_unparseable_time_names_file_column_and_row(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'when'), [('a', 'x', '2021-01-01'), ('a', 'y', 'soon')])
    refused(cli(capsys, 'train', '--interactions', log, '--time-col', 'when', *QUICK, '--out', tmp_path / 'run'),
            str(log), "column 'when'", "row 1: 'soon'")

# ------------------------------------------------------------------------------------------------ 5. --exclude-seen
def test_exclude_seen_never_returns_a_seen_item(trained, capsys):
    run, _, rows = trained
    seen = {i for u, i, _ in rows if u == 'u0'}
    code, out, err = cli(capsys, 'recommend', run, '--user', 'u0', '--exclude-seen', '-k', '50', '--json')
    assert code == 0, err
    recs = json.loads(out)
    assert len(recs) == len(ITEMS) - len(seen) and not {r['item'] for r in recs} & seen
    assert all(np.isfinite(r['score']) for r in recs)
    assert f'{len(recs)} recommendations, not 50' in err and '--exclude-seen' in err

# ------------------------------------------------------------------------------------------------ 6. interrupted runs
def test_interrupted_run_is_never_silently_restarted(tmp_path, capsys, monkeypatch):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    run, work = tmp_path / 'run', partial_dir(tmp_path / 'run')
    train = ['train', '--interactions', log, *QUICK, '--out', run]
    def full_disk(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(runs_mod, 'write_run', full_disk)        # the disk fills up during the final write
    refused(cli(capsys, *train), 'No space left on device', 'nothing was lost', str(work), '--resume')
    monkeypatch.undo()
    assert not run.exists() and (work / 'checkpoints' / 'last.json').exists()
    before = snapshot(work)
    refused(cli(capsys, *train), 'interrupted run', 'checkpoint of epoch 1', 'pass --resume')       # no silent restart
    refused(cli(capsys, *train, '--resume', '--lr', '0.01'), '--resume', '--lr 0.003', '--lr 0.01', 'same options')
    refused(cli(capsys, 'evaluate', run), 'interrupted run', '--resume')
    write_csv(log, ('user', 'item', 'timestamp'), log_rows([i + 'b' for i in ITEMS]))   # same size, other catalogue
    refused(cli(capsys, *train, '--resume'), 'another catalogue', 'same data')
    assert snapshot(work) == before                                                   # nothing on disk was lost
    write_csv(log, ('user', 'item', 'timestamp'), log_rows(ITEMS))
    # a checkpoint write killed by SIGKILL leaves temporary files: the next run removes them, and says so
    for f in ('last.json.tmp99999', 'state-0002.safetensors.tmp99999'): (work / 'checkpoints' / f).write_bytes(b'half')
    code, out, err = cli(capsys, *[a if a != '1' else '2' for a in train], '--resume')   # one more epoch: allowed
    assert code == 0, err
    assert 'removed 2 temporary file(s)' in out
    m = json.loads((run / 'metrics.json').read_text())
    assert [h['epoch'] for h in m['history']] == [1, 2] and not work.exists()
    assert not [p for p in run.rglob('*') if '.tmp' in p.name]
    refused(cli(capsys, *train), 'already holds a finished run')
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'other', '--resume'), 'no checkpoint to resume')

def test_kill_during_the_final_write_leaves_no_half_run_folder(tmp_path, capsys, monkeypatch):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    real = runs_mod.write_run
    def killed(folder, *a, **k):
        real(folder, *a, **k)
        with open(Path(folder) / 'split.npz', 'r+b') as f: f.truncate(100)   # a torn file ...
        raise KeyboardInterrupt                                            # ... then the process dies
    monkeypatch.setattr(runs_mod, 'write_run', killed)
    with pytest.raises(KeyboardInterrupt): main(['train', '--interactions', str(log), *QUICK, '--out', str(tmp_path / 'run')])
    monkeypatch.undo()
    capsys.readouterr()
    assert not (tmp_path / 'run').exists() and (partial_dir(tmp_path / 'run') / 'checkpoints' / 'last.json').exists()
    code, _, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run', '--resume')
    assert code == 0, err
    assert SplitData.load(tmp_path / 'run' / 'split').n_items == len(ITEMS)

# ------------------------------------------------------------------------------------------------ 7. fingerprints
def test_model_and_split_of_another_catalogue_of_the_same_size_are_refused(trained, tmp_path, capsys):
    run, _, _ = trained
    keep = snapshot(run)
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows([f'j{k}' for k in range(len(ITEMS))]))
    code, _, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'other')
    assert code == 0, err
    mixed = tmp_path / 'mixed'; shutil.copytree(run, mixed)
    for f in ('split.npz', 'split.json'): shutil.copy(tmp_path / 'other' / f, mixed / f)
    refused(cli(capsys, 'evaluate', mixed), 'mixes files of two runs')
    refused(cli(capsys, 'recommend', mixed, '--user', 'u0'), 'mixes files of two runs')
    model, split, _, cfg = load_run(run)
    other = SplitData.load(tmp_path / 'other' / 'split')
    assert other.n_items == split.n_items and cfg['catalogue_sha256'] == split.info['catalogue_sha256']
    with pytest.raises(ValueError, match='not the one the model was trained on'): InterestTracker(model, other)
    InterestTracker(model, split)                                     # its own split is accepted
    assert snapshot(run) == keep

# ------------------------------------------------------------------------------------------------ 8. cleaning
def test_train_cleans_by_default_and_reports_it(trained):
    run, out, rows = trained
    assert 'cleaning: duplicates' in out and f'{len(rows) + 5} -> {len(rows)} rows' in out and 'e.g.' in out
    assert "texts filled from title or id, e.g. 'i4'" in out and "with different texts, e.g. 'i5'" in out
    m = json.loads((run / 'metrics.json').read_text())
    assert m['data']['n_events'] == len(rows) and {s['step'] for s in m['data']['cleaning']} >= {'duplicates', 'items without text'}
    assert 'Cleaning (`--no-clean` keeps the raw log)' in (run / 'report.md').read_text()

def test_no_clean_keeps_the_raw_log(tmp_path, capsys):
    rows = log_rows(ITEMS)
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), rows + rows[:50] + rows[:50])   # 100 repeated events
    code, out, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--no-clean', '--out', tmp_path / 'run')
    assert code == 0, err
    assert 'cleaning:' not in out
    assert json.loads((tmp_path / 'run' / 'metrics.json').read_text())['data']['n_events'] == len(rows) + 100

# ------------------------------------------------------------------------------------------------ 9. crashes become messages
def test_no_user_with_four_events(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS, n_events=3))
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run'), str(log), 'no user has 4 or more events')
    assert not (tmp_path / 'run').exists() and not partial_dir(tmp_path / 'run').exists()

def test_pad_as_an_item_id(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS[:-1] + ['<pad>']))
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run'), str(log), "'<pad>' is reserved for padding", 'rename')

def test_semicolon_file_suggests_sep(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS), sep=';')
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run'), str(log), "--sep ';'")

def test_latin1_items_file(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    items = write_csv(tmp_path / 'items.csv', ('item', 'text'), [(i, f'caf\u00e9 cr\u00e8me {i}') for i in ITEMS], encoding='latin-1')
    offset = items.read_bytes().index(b'\xe9')
    refused(cli(capsys, 'train', '--interactions', log, '--items', items, *QUICK, '--out', tmp_path / 'run'),
            str(items), f'at byte offset {offset}, line 2', '--encoding latin-1')
    code, _, err = cli(capsys, 'train', '--interactions', log, '--items', items, '--encoding', 'latin-1', *QUICK, '--out', tmp_path / 'run')
    assert code == 0, err
    got = pd.read_csv(tmp_path / 'run' / 'items.csv.gz', dtype=str)
    assert got.set_index('item').loc['007', 'text'] == 'caf\u00e9 cr\u00e8me 007'

@pytest.mark.parametrize('damage, msg', [
    (lambda r: (r / 'config.json').write_text(''), 'config.json is empty or truncated'),
    (lambda r: (r / 'config.json').write_text((r / 'config.json').read_text()[:50]), 'config.json is empty or truncated'),
    (lambda r: (r / 'split.npz').write_bytes((r / 'split.npz').read_bytes()[:200]), 'truncated or corrupt split'),
    (lambda r: (r / 'items.csv.gz').write_bytes((r / 'items.csv.gz').read_bytes()[:30]), 'items.csv.gz is missing or truncated'),
    (lambda r: (r / 'model.safetensors').unlink(), 'model.safetensors is missing')])
def test_damaged_run_folder(trained, tmp_path, capsys, damage, msg):
    run, _, _ = trained
    keep = snapshot(run)
    bad = tmp_path / 'bad'; shutil.copytree(run, bad); damage(bad)
    refused(cli(capsys, 'evaluate', bad), msg)
    refused(cli(capsys, 'recommend', bad, '--user', 'u0'), msg)
    assert snapshot(run) == keep

def test_unwritable_out(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    (tmp_path / 'file').write_text('not a folder')
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'file' / 'run'), 'cannot write run folder', 'writable --out')
    refused(cli(capsys, 'embed', '--interactions', log, '--out', tmp_path / 'file' / 'e.safetensors'), 'cannot create', 'writable path')
    assert (tmp_path / 'file').read_text() == 'not a folder'
