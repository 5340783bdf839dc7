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
