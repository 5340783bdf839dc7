"""scripts/time_chapters.py: the table it writes, the rows it keeps, and the committed benchmarks/chapter-times.md.

Run: `pytest tests/test_time_chapters.py -q` (no notebook is executed here).
"""
import importlib.util, re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('time_chapters', REPO/'scripts'/'time_chapters.py')
tc = importlib.util.module_from_spec(spec); spec.loader.exec_module(tc)

def _row(name, s, cpu=10.0, rc=0):
    return dict(notebook=name, seconds=s, cpu=cpu, rc=rc, load0=0.5, load1=0.7, date='2026-01-01 00:00')

def test_row_verdict():
    assert '| yes | 0 |' in tc.fmt(_row('a.ipynb', 179.4))
    assert '| no | 0 |' in tc.fmt(_row('a.ipynb', 181))
    assert '| failed | 1 |' in tc.fmt(_row('a.ipynb', 20, rc=1))
    assert tc.fmt(_row('a.ipynb', 12.4, cpu=3.6)).startswith('| a.ipynb | 12 | 4 |')

def test_rows_of_other_notebooks_are_kept(tmp_path):
    f = tmp_path/'t.md'
    tc.write(f, {'a.ipynb': tc.fmt(_row('a.ipynb', 5)), 'b.ipynb': tc.fmt(_row('b.ipynb', 7))})
    rows = tc.read_rows(f)
    assert list(rows) == ['a.ipynb', 'b.ipynb']
    rows['b.ipynb'] = tc.fmt(_row('b.ipynb', 9))
    text = tc.write(f, rows)
    assert '| a.ipynb | 5 |' in text and '| b.ipynb | 9 |' in text and '| b.ipynb | 7 |' not in text
    assert 'python scripts/time_chapters.py' in text

def test_committed_table_covers_every_notebook():
    "benchmarks/chapter-times.md has one row per notebook of nbs/, each run without error (re-run the script after adding one)."
    f = REPO/'benchmarks'/'chapter-times.md'
    rows = tc.read_rows(f)
    nbs = sorted(p.name for p in (REPO/'nbs').glob('*.ipynb'))
    assert sorted(rows) == nbs, f'rows for {sorted(rows)}, notebooks {nbs}'
    for name, line in rows.items():
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert cells[4] == '0', f'{name}: nbdev_test failed when timed: {line}'
        assert re.fullmatch(r'\d+', cells[1]) and re.fullmatch(r'\d+', cells[2]), line
