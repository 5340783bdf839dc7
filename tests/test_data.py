"""Tests of interest_llm.data: validation, time parsing, splitting, sequences and batches."""
import json, warnings
import numpy as np, pandas as pd, pytest, torch
import interest_llm.data as D
from interest_llm.data import *
from interest_llm.simulate import simulate_drift
from interest_llm.cleaning import CleaningReport

def toy(**kw):
    d = dict(user=['a', 'a', 'b', 'a', 'a', 'b'], item=['x', 'y', 'x', 'z', 'w', 'y'], timestamp=[1, 2, 1, 2, 9, 3])
    d.update(kw); return pd.DataFrame(d)

# ---------------------------------------------------------------- validation / bad input
def test_validate_accepts_and_coerces():
    df = validate_interactions(toy(user=[1, 1, 2, 1, 1, 2]), coerce=True)
    assert df.user.tolist()[:2] == ['1', '1'] and df.timestamp.dtype == np.int64

@pytest.mark.parametrize('bad,msg', [('userid', "did you mean 'userid'"), ('ItemID', "did you mean 'ItemID'"),
                                     ('time', "did you mean 'time'")])
def test_misnamed_column_suggests_close_name(bad, msg):
    col = {'userid': 'user', 'ItemID': 'item', 'time': 'timestamp'}[bad]
    with pytest.raises(ValueError, match=msg): validate_interactions(toy().rename(columns={col: bad}))

def test_missing_column_lists_columns():
    with pytest.raises(ValueError, match="missing column 'timestamp'.*columns present"):
        validate_interactions(toy().drop(columns='timestamp').assign(foo=1))

def test_nan_ids_named():
    df = toy(user=['a', None, 'b', 'a', 'a', 'b'])
    with pytest.raises(ValueError, match="'user' has 1 missing"): validate_interactions(df)

def test_unparseable_timestamp_names_row():
    with pytest.raises(ValueError, match=r"unparseable.*row 2: 'soon'"):
        validate_interactions(toy(timestamp=['2020-01-01'] * 2 + ['soon'] + ['2020-01-02'] * 3), coerce=True)

def test_timestamp_dtype_required_without_coerce():
    with pytest.raises(ValueError, match='int64 Unix seconds'): validate_interactions(toy(timestamp=[1.5] * 6))

def test_empty_data():
    with pytest.raises(ValueError, match='empty'): validate_interactions(toy().iloc[:0])
    with pytest.raises(ValueError, match='DataFrame'): validate_interactions([1, 2, 3])

def test_users_with_too_few_events():
    sp = leave_one_out(toy(), n_negatives=0)
    assert sp.eval_users().tolist() == [0]            # b has 2 events: training only
    with pytest.raises(ValueError, match='no valid target'): sp.example(1, 'valid')

# ---------------------------------------------------------------- splitting
def test_leave_one_out_by_hand():
    sp = leave_one_out(toy(), n_negatives=0)
    assert sp.item_ids.tolist() == ['<pad>', 'w', 'x', 'y', 'z'] and sp.users.tolist() == ['a', 'b']
    assert sp.seqs[0].tolist() == [2, 3, 4, 1] and sp.times[0].tolist() == [1, 2, 2, 9]
    assert sp.train_seq(0).tolist() == [2, 3]
    inp, t, target = sp.example(0, 'valid'); assert (inp.tolist(), target) == ([2, 3], 4)
    inp, t, target = sp.example(0, 'test'); assert (inp.tolist(), t.tolist(), target) == ([2, 3, 4], [1, 2, 2], 1)
    assert sp.n_items == 4 and sp.n_users == 2 and sp.negatives is None

def test_negatives_seeded_disjoint_and_saved(tmp_path):
    inter, _, _ = simulate_drift(n_users=40, n_items=200, seed=2)
    sp = leave_one_out(inter, n_negatives=100, seed=7)
    assert sp.negatives.shape == (40, 100) and sp.negatives.dtype == np.int64
    for u in range(40):
        assert not set(sp.negatives[u]) & set(sp.seqs[u]) and len(set(sp.negatives[u])) == 100
        assert sp.negatives[u].min() >= 1 and sp.negatives[u].max() <= sp.n_items
    assert (leave_one_out(inter, seed=7).negatives == sp.negatives).all()
    assert not (leave_one_out(inter, seed=8).negatives == sp.negatives).all()
    sp.save(tmp_path / 's')
    with np.load(tmp_path / 's.npz', allow_pickle=False) as z: assert z['item_ids'].dtype.kind == 'U'
    back = SplitData.load(tmp_path / 's')
    assert (back.negatives == sp.negatives).all() and back.info == sp.info and (back.item_ids == sp.item_ids).all()
    assert all((a == b).all() for a, b in zip(back.times, sp.times)) and json.loads((tmp_path / 's.json').read_text())['seed'] == 7
    with pytest.raises(ValueError, match='fewer than n_negatives'): leave_one_out(toy(), n_negatives=3)

def test_temporal_split():
    inter, _, _ = simulate_drift(n_users=20, seed=0)
    tr, te = temporal_split(inter, quantile=0.7)
    assert tr.timestamp.max() < te.timestamp.min() and len(tr) + len(te) == len(inter)
    rep = CleaningReport(); tr2, te2 = temporal_split(inter, quantile=0.7, drop_cold=True, report=rep)
    assert te2.item.isin(set(tr2.item)).all() and te2.user.isin(set(tr2.user)).all()
    assert [step['step'] for step in rep.steps] == ['temporal split', 'cold test events']
    assert rep.steps[1]['rows_after'] == len(te2) and rep.steps[0]['rows_after'] == len(tr2)
    with pytest.raises(ValueError, match='empty train'): temporal_split(inter, cutoff=0)

# ---------------------------------------------------------------- torch side
def test_train_windows_cover_every_target_once():
    for n in range(0, 40):
        for m in (1, 2, 5, 50):
            w = train_windows(n, m)
            tg = [j for a, b in w for j in range(a + 1, b)]
            assert tg == list(range(1, n)) and all(b - a <= m + 1 for a, b in w)

def test_train_batch_format():
    inter, _, _ = simulate_drift(n_users=30, n_steps=(3, 40), seed=5)
    sp = leave_one_out(inter, n_negatives=0)
    batches = list(make_loader(sp, 'train', batch_size=8, max_len=10, seed=0))
    b = batches[0]
    assert set(b) == {'items', 'targets', 'gaps', 'lengths'}
    assert b['items'].dtype == torch.long and b['targets'].dtype == torch.long and b['gaps'].dtype == torch.float32
    assert b['items'].shape == b['targets'].shape == b['gaps'].shape and b['items'].shape[1] <= 10
    mask = torch.arange(b['items'].shape[1])[None] < b['lengths'][:, None]
    assert ((b['items'] > 0) == mask).all() and ((b['targets'] > 0) == mask).all() and (b['gaps'][~mask] == 0).all()
    assert (b['items'][:, 1:][mask[:, 1:]] == b['targets'][:, :-1][mask[:, 1:]]).all()   # shifted by one
    assert sum(int(x['lengths'].sum()) for x in batches) == sum(max(len(sp.train_seq(u)) - 1, 0) for u in range(sp.n_users))
    again = next(iter(make_loader(sp, 'train', batch_size=8, max_len=10, seed=0)))
    assert torch.equal(again['items'], b['items'])

def test_eval_batch_format_and_truncation():
    inter, _, _ = simulate_drift(n_users=12, n_steps=(30, 40), seed=6)
    sp = leave_one_out(inter, n_negatives=100, seed=0)
    b = next(iter(make_loader(sp, 'valid', batch_size=12, max_len=5)))
    assert set(b) == {'items', 'gaps', 'lengths', 'target', 'user', 'negatives'}
    assert b['items'].shape == (12, 5) and (b['lengths'] == 5).all() and b['negatives'].shape == (12, 100)
    u = int(b['user'][0]); s = sp.seqs[u]
    assert b['items'][0].tolist() == s[-7:-2].tolist() and int(b['target'][0]) == s[-2]
    t = make_loader(sp, 'test', batch_size=12, max_len=5)
    bt = next(iter(t)); u = int(bt['user'][3])
    assert bt['items'][3].tolist() == sp.seqs[u][-6:-1].tolist() and int(bt['target'][3]) == sp.seqs[u][-1]
    assert bt['gaps'][3].tolist() == np.diff(sp.times[u][-7:-1]).astype(float).tolist()
    with pytest.raises(ValueError, match='stage'): SeqDataset(sp, stage='dev')

def test_gaps_zero_at_first_event():
    sp = leave_one_out(pd.DataFrame({'user': ['u'] * 5, 'item': list('abcde'), 'timestamp': [10, 15, 15, 40, 41]}), n_negatives=0)
    row = SeqDataset(sp, max_len=50, stage='test')[0]
    assert row['gaps'].tolist() == [0, 5, 0, 25]
    tr = SeqDataset(sp, max_len=50)[0]
    assert tr['items'].tolist() == [1, 2] and tr['targets'].tolist() == [2, 3] and tr['gaps'].tolist() == [0, 5]

def test_plot_overview():
    import matplotlib; matplotlib.use('Agg')
    inter, _, _ = simulate_drift(n_users=10, seed=0)
    fig = plot_overview(inter, 'sim'); assert len(fig.axes) == 3

# ---------------------------------------------------------------- history -> batch, users, gaps
def test_time_gaps():
    assert time_gaps([5, 5, 9, 20]).tolist() == [0, 0, 4, 11] and time_gaps([5]).dtype == np.float32

def test_history_batch_equals_the_loader():
    inter, _, _ = simulate_drift(n_users=25, n_steps=(3, 30), seed=2)
    sp = leave_one_out(inter, n_negatives=0)
    for stage, max_len in (('test', 7), ('valid', 50)):
        ev = next(iter(make_loader(sp, stage, batch_size=25, max_len=max_len)))
        inputs = [sp.example(int(u), stage)[:2] for u in ev['user']]
        hb = history_batch([s for s, _ in inputs], [t for _, t in inputs], max_len=max_len)
        for key in ('items', 'gaps', 'lengths'): assert torch.equal(hb[key], ev[key]), key
    assert history_batch([[1, 2, 3]], max_len=2)['items'].tolist() == [[2, 3]]
    with pytest.raises(ValueError, match='3 items but 2 times'): history_batch([[1, 2, 3]], [[1, 2]])

def test_user_index():
    sp = leave_one_out(toy(), n_negatives=0)
    assert (user_index(sp, 'b'), user_index(sp, 1), user_index(sp, np.int64(0))) == (1, 1, 0)
    with pytest.raises(ValueError, match="unknown user 'zz'"): user_index(sp, 'zz')

def test_moved_names_still_work():
    import interest_llm.datasets, interest_llm.simulate
    with pytest.warns(DeprecationWarning, match='interest_llm.datasets.load_embedded'):
        assert D.load_embedded is interest_llm.datasets.load_embedded
    with pytest.warns(DeprecationWarning): assert D.simulate_drift is interest_llm.simulate.simulate_drift
    import interest_llm.cleaning, interest_llm.download
    with pytest.warns(DeprecationWarning, match='interest_llm.cleaning.clean'):
        assert D.clean is interest_llm.cleaning.clean
    with pytest.warns(DeprecationWarning): assert D.CleaningReport is interest_llm.cleaning.CleaningReport
    with pytest.warns(DeprecationWarning): assert D.safe_extract is interest_llm.download.safe_extract
    with pytest.raises(AttributeError): D.no_such_name

# ---------------------------------------------------------------- bad input of validation, split and loader
def _df(**kw):
    d = dict(user=['u1', 'u1', 'u1', 'u2'], item=['a', 'b', 'c', 'a'], timestamp=np.array([1, 2, 3, 4], dtype=np.int64))
    d.update(kw); return pd.DataFrame(d)

@pytest.mark.parametrize('df, msg', [
    (pd.DataFrame({'user': ['u'], 'itme': ['a'], 'timestamp': [1]}), r"missing column 'item' \(did you mean 'itme'\?\)"),
    (_df().iloc[:0], r'empty \(0 rows\)'),
    (_df(user=['u1', None, 'u1', 'u2']), r"column 'user' has 1 missing \(NaN\) ids"),
    (_df(item=[1, 2, 3, 4]), r"column 'item' must hold str ids"),
    (_df(timestamp=['2020-01-01'] * 4), r"column 'timestamp' must be int64 Unix seconds"),
    (_df(rating=['x', 'y', 'z', 'w']), r"column 'rating' must be numeric"),
    ('not a frame', r'must be a pandas DataFrame'),
])
def test_validate_interactions_names_the_problem(df, msg):
    with pytest.raises(ValueError, match=msg): validate_interactions(df)

def test_coerce_repairs_types_and_reports_bad_times():
    fixed = validate_interactions(_df(item=[1, 2, 3, 4], timestamp=['2020-01-01'] * 4), coerce=True)
    assert fixed['item'].tolist() == ['1', '2', '3', '4'] and fixed['timestamp'].dtype == np.int64
    with pytest.raises(ValueError, match=r"timestamp: 1 unparseable value\(s\), e.g. row 2: 'yesterday'"):
        validate_interactions(_df(timestamp=['2020-01-01', '2020-01-02', 'yesterday', '2020-01-04']), coerce=True)
    with pytest.raises(ValueError, match=r'timestamp: 1 missing \(NaN\) values'):
        validate_interactions(_df(timestamp=[1.0, np.nan, 3.0, 4.0]), coerce=True)

def test_split_and_loader_bad_input(sim):
    inter, _, sp = sim
    with pytest.raises(ValueError, match='empty'): leave_one_out(inter.iloc[:0])
    with pytest.raises(ValueError, match=r'fewer than n_negatives=100 unseen items'): leave_one_out(_df())
    with pytest.raises(ValueError, match="stage must be 'train', 'valid' or 'test'"): make_loader(sp, 'tset')
    with pytest.raises(ValueError, match='max_len must be >= 1'): SeqDataset(sp, 0)
    short = leave_one_out(_df(user=['u1', 'u1', 'u2', 'u2']), n_negatives=0)     # nobody has 3 events
    with pytest.raises(ValueError, match=r"has 2 events: no test target"): short.example(0, 'test')
    assert len(SeqDataset(short, 5, 'test')) == 0

# ---------------------------------------------------------------- bad input of a user's files, through the command line
import os, re, shlex, sys
from pathlib import Path
from cli_helpers import QUICK, T0, ITEMS, cli, refused, write_csv, log_rows
from interest_llm.data import SplitData as _Split

def _train(capsys, tmp_path, log, *opts, out='run'):
    return cli(capsys, 'train', '--interactions', log, *opts, *QUICK, '--out', tmp_path / out)

def _advice(line, **values):
    "The command-line option a one-line refusal advises, as argv tokens (placeholders filled from `values`)."
    m = re.search(r"command line: (--[a-z-]+)(?: ('[^']*'|[^\s;)]+))?", line)
    assert m, line
    value = m[2] and shlex.split(m[2])[0]
    return [m[1]] + ([values.get(value, value)] if value else [])

def _inside_one_second(rows, write):
    "log_rows + two events of u0 800 ms apart inside one second, the later one listed first; times as `write(seconds)`."
    t = T0 + 3600 * 10
    return [(u, i, write(s)) for u, i, s in rows] + [('u0', 'later', write(t + 0.9)), ('u0', 'earlier', write(t + 0.1))]

TIME_FORMATS = {'epoch ms': lambda s: round(s * 1000), 'epoch us': lambda s: round(s * 10**6),
                'epoch ns': lambda s: round(s * 10**6) * 1000, 'float seconds': lambda s: f'{s:.1f}',
                'ISO with fraction': lambda s: pd.Timestamp(round(s * 1000), unit='ms').isoformat(),
                'ISO with fraction and zone': lambda s: pd.Timestamp(round(s * 1000), unit='ms', tz='UTC').isoformat()}

@pytest.mark.parametrize('fmt', list(TIME_FORMATS))
def test_events_inside_one_second_are_ordered_by_their_exact_times(tmp_path, capsys, fmt):
    "The earlier of two events 800 ms apart is not the test target because the file lists it last; the report says so."
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), _inside_one_second(log_rows(ITEMS), TIME_FORMATS[fmt]))
    code, out, err = _train(capsys, tmp_path, log)
    assert code == 0, err
    split = _Split.load(tmp_path / 'run' / 'split')
    u = list(split.users).index('u0')
    assert split.item_ids[split.seqs[u][-2:]].tolist() == ['earlier', 'later']     # the later one is the test target
    assert split.times[u][-1] == split.times[u][-2] == T0 + 36000                 # both floored to the same second
    assert '1 users had rows out of time order' in out

@pytest.mark.parametrize('values', [['16:11:12', '16:11:13'], ['4:05 PM', '4:06 PM'], ['16:11', '16:12']])
def test_a_time_of_day_column_is_refused(tmp_path, capsys, values):
    rows = [(u, i, values[k % 2]) for k, (u, i, _) in enumerate(log_rows(ITEMS))]
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'clock'), rows)
    refused(_train(capsys, tmp_path, log, '--time-col', 'clock'), str(log), "column 'clock'", 'a time of day has no date',
            '--time-col COLUMN')
    assert not (tmp_path / 'run').exists()

def test_a_parquet_time_of_day_column_is_refused(tmp_path, capsys):
    import datetime
    df = pd.DataFrame(log_rows(ITEMS), columns=['user', 'item', 'timestamp'])
    df['clock'] = [datetime.time(16, 11, k % 60) for k in range(len(df))]
    df.to_parquet(tmp_path / 'log.parquet')
    refused(_train(capsys, tmp_path, tmp_path / 'log.parquet', '--time-col', 'clock'), "column 'clock'", 'a time of day has no date')

def test_yyyymmdd_integers_are_read_as_dates(tmp_path, capsys):
    days = [20240131, 20240201, 20240202, 20240205, 20240301, 20240302]
    rows = [(u, i, days[k % 6]) for k, (u, i, _) in enumerate(log_rows(ITEMS))]
    code, out, err = _train(capsys, tmp_path, write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), rows))
    assert code == 0, err
    assert 'numbers like 20240131 are dates' in out
    times = set(np.concatenate(_Split.load(tmp_path / 'run' / 'split').times).tolist())
    assert times == {int(pd.Timestamp(str(d)).timestamp()) for d in days}

def test_an_excel_log_is_read(tmp_path, capsys):
    pytest.importorskip('openpyxl')
    rows = log_rows(ITEMS)
    pd.DataFrame(rows, columns=['user', 'item', 'timestamp']).to_excel(tmp_path / 'log.xlsx', index=False)
    pd.DataFrame({'item': ITEMS, 'text': [f'text of {i}' for i in ITEMS]}).to_excel(tmp_path / 'items.xlsx', index=False)
    code, out, err = _train(capsys, tmp_path, tmp_path / 'log.xlsx', '--items', tmp_path / 'items.xlsx')
    assert code == 0, err
    split = _Split.load(tmp_path / 'run' / 'split')
    assert sorted(split.item_ids[1:].tolist()) == sorted(ITEMS)                      # 007 and 7 two items, 12.0 as written
    assert sorted(np.concatenate(split.times).tolist()) == sorted(t for _, _, t in rows)

@pytest.mark.parametrize('name, engine, package', [('log.xlsx', 'read_excel', 'openpyxl'), ('log.parquet', 'read_parquet', 'pyarrow')])
def test_a_missing_reader_is_one_line_naming_the_package(tmp_path, capsys, monkeypatch, name, engine, package):
    df = pd.DataFrame(log_rows(ITEMS), columns=['user', 'item', 'timestamp'])
    if name.endswith('.parquet'): df.to_parquet(tmp_path / name)
    else: (tmp_path / name).write_bytes(b'PK\x03\x04 an Excel workbook')
    def missing(*a, **k): raise ImportError(f"Missing optional dependency '{package}'")
    monkeypatch.setattr(pd, engine, missing)
    refused(_train(capsys, tmp_path, tmp_path / name), str(tmp_path / name), f'pip install {package}', 'save the file as CSV')

def test_pyarrow_is_an_install_requirement():
    "Parquet is advertised in --help, so reading it must not need a dev extra."
    settings = (Path(__file__).resolve().parents[1] / 'settings.ini').read_text()
    requirements = next(l for l in settings.splitlines() if l.startswith('requirements ='))
    assert 'pyarrow' in requirements

@pytest.mark.parametrize('fmt', ['csv', 'parquet'])
def test_float_item_ids_match_the_items_file(tmp_path, capsys, fmt):
    "Ids written as floats (20.0, how pandas writes an int column that held a NaN) are the items file's 20, in both formats."
    rows = log_rows([str(i) for i in range(20, 30)])
    df = pd.DataFrame(rows + [('u0', None, T0)], columns=['user', 'item', 'timestamp']).astype({'item': float})
    log = tmp_path / f'log.{fmt}'
    df.to_csv(log, index=False) if fmt == 'csv' else df.to_parquet(log)
    assert fmt == 'parquet' or '20.0' in log.read_text()
    items = write_csv(tmp_path / 'items.csv', ('item', 'text'), [(i, f'text of {i}') for i in range(20, 30)])
    code, out, err = _train(capsys, tmp_path, log, '--items', items)
    assert code == 0, err
    assert _Split.load(tmp_path / 'run' / 'split').item_ids[1:].tolist() == [str(i) for i in range(20, 30)]
    got = pd.read_csv(tmp_path / 'run' / 'items.csv.gz', dtype=str).set_index('item').text
    assert got['20'] == 'text of 20' and 'uncatalogued' not in out

def test_an_items_file_of_other_ids_is_refused_and_the_advice_works(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    items = write_csv(tmp_path / 'items.csv', ('item', 'text'), [(f'P-{i}', f'text of {i}') for i in ITEMS])
    line = refused(_train(capsys, tmp_path, log, '--items', items), str(items), "only 0 of the log's 10 items",
                   '--items-item-col', 'leave out --items')
    assert not (tmp_path / 'run').exists()
    code, _, err = _train(capsys, tmp_path, log)                                   # the advice: leave out --items
    assert code == 0, err

@pytest.mark.parametrize('other, flag, named', [('user', '--user-col', 'customer'), ('timestamp', '--time-col', 'when')])
def test_the_named_column_wins_over_a_column_of_our_name(tmp_path, capsys, other, flag, named):
    rows = [(u, i, t, 'x', 1) for u, i, t in log_rows(ITEMS)]
    header = {'user': ('customer', 'item', 'timestamp', 'user', 'x'), 'timestamp': ('user', 'item', 'when', 'x', 'timestamp')}[other]
    log = write_csv(tmp_path / 'log.csv', header, rows)
    items = write_csv(tmp_path / 'items.csv', ('item', 'text', 'title'), [(i, 'same text', f'title of {i}') for i in ITEMS])
    code, out, err = _train(capsys, tmp_path, log, flag, named, '--items', items, '--text-col', 'title')
    assert code == 0, err
    assert f"['{other}'] not read: '{named}' is read as '{other}'" in out and "['text'] not read" in out
    split = _Split.load(tmp_path / 'run' / 'split')
    assert set(split.users) == {f'u{k}' for k in range(12)} and len(set(np.concatenate(split.times))) > 1
    got = pd.read_csv(tmp_path / 'run' / 'items.csv.gz', dtype=str, keep_default_na=False).set_index('item').text
    assert got['007'] == 'title of 007'

def test_one_column_for_two_options_is_refused(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('id', 'timestamp'), [(i, t) for _, i, t in log_rows(ITEMS)])
    refused(_train(capsys, tmp_path, log, '--user-col', 'id', '--item-col', 'id'), str(log), "column 'id' is given for",
            '--item-col COLUMN')

def test_a_directory_or_a_pipe_is_named_as_such(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    (tmp_path / 'folder').mkdir()
    refused(_train(capsys, tmp_path, tmp_path / 'folder'), 'is a directory, not a file', '--interactions FILE')
    refused(_train(capsys, tmp_path, log, '--items', tmp_path / 'folder'), 'is a directory, not a file', '--items FILE')
    if hasattr(os, 'mkfifo'):
        os.mkfifo(tmp_path / 'pipe.csv')   # never opened: reading a pipe with no writer would hang
        refused(_train(capsys, tmp_path, tmp_path / 'pipe.csv'), 'not a regular file', 'named pipe')
    refused(_train(capsys, tmp_path, tmp_path / 'missing.csv'), 'missing.csv does not exist')

def test_an_unused_rating_column_of_words_does_not_fail_the_load(tmp_path, capsys):
    rows = [(u, i, t, 'good' if k % 3 else 4) for k, (u, i, t) in enumerate(log_rows(ITEMS))]
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp', 'rating'), rows)
    code, out, err = _train(capsys, tmp_path, log)
    assert code == 0, err
    assert "column 'rating' holds values that are not numbers (e.g. 'good'): not read" in out

def test_each_file_has_its_options_and_every_advice_works_as_written(tmp_path, capsys):
    "A ';' log with a sku column and a ',' latin-1 items file with an id column: follow each refusal's option literally."
    log = write_csv(tmp_path / 'log.csv', ('user', 'sku', 'timestamp'), log_rows(ITEMS), sep=';')
    items = write_csv(tmp_path / 'items.csv', ('id', 'text'), [(i, f'caf\u00e9 {i}') for i in ITEMS], encoding='latin-1')
    opts, seen = ['--items', items], []
    for _ in range(6):
        code, out, err = res = _train(capsys, tmp_path, log, *opts)
        if code == 0: break
        line = refused(res)
        which = str(items) if line.startswith(f'interest-llm: error: {items}') else str(log)
        seen.append((Path(which).name, _advice(line, COLUMN='sku' if which == str(log) else 'id')))
        opts += seen[-1][1]
    assert code == 0, (seen, err)
    assert sorted((f, a[0]) for f, a in seen) == [('items.csv', '--items-encoding'), ('items.csv', '--items-item-col'),
                                                  ('items.csv', '--items-sep'), ('log.csv', '--item-col'), ('log.csv', '--sep')]
    got = pd.read_csv(tmp_path / 'run' / 'items.csv.gz', dtype=str, keep_default_na=False).set_index('item').text
    assert got['007'] == 'caf\u00e9 007'

def test_no_clean_with_missing_values_says_how_to_drop_them(tmp_path, capsys):
    rows = log_rows(ITEMS) + [('u1', '', T0)]
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), rows)
    line = refused(_train(capsys, tmp_path, log, '--no-clean'), str(log), "missing values in ['item']", 'leave out --no-clean')
    code, _, err = _train(capsys, tmp_path, log)
    assert code == 0, err

def test_advice_of_the_python_api_works_as_written():
    "The message of a function without `coerce` names a call that exists, and that call repairs the table."
    df = toy(user=[1, 1, 2, 1, 1, 2])
    with pytest.raises(ValueError, match=r'validate_interactions\(df, coerce=True\)'): leave_one_out(df, n_negatives=0)
    assert leave_one_out(validate_interactions(df, coerce=True), n_negatives=0).users.tolist() == ['1', '2']
    with pytest.raises(ValueError, match=r"column 'rating': .*'good'"):
        validate_interactions(toy(rating=['good', 1, 2, 3, 4, 5]), coerce=True)
