"""Tests of interest_llm.data: loaders on real files (skipped without the shared data) and on fixtures, bad input,
splitting, sequences, downloads and safe extraction."""
import gzip, io, json, os, shutil, tarfile, urllib.error, warnings, zipfile
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
import interest_llm.data as D
from interest_llm.data import *


def need(data_dir, sub):
    p = data_dir / sub
    if not p.exists(): pytest.skip(f'{p} not found')
    return p

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
    out, rep = clean(df)   # the repair: dropped and reported
    assert len(out) == 5 and rep.to_frame().set_index('step').loc['missing values', 'removed'] == 1
    with pytest.raises(ValueError, match='missing values'): clean(df, missing='error')

def test_unparseable_timestamp_names_row():
    with pytest.raises(ValueError, match=r"unparseable.*row 2: 'soon'"):
        validate_interactions(toy(timestamp=['2020-01-01'] * 2 + ['soon'] + ['2020-01-02'] * 3), coerce=True)

def test_timestamp_dtype_required_without_coerce():
    with pytest.raises(ValueError, match='int64 Unix seconds'): validate_interactions(toy(timestamp=[1.5] * 6))

def test_empty_data():
    with pytest.raises(ValueError, match='empty'): validate_interactions(toy().iloc[:0])
    with pytest.raises(ValueError, match='DataFrame'): validate_interactions([1, 2, 3])

def test_non_monotonic_timestamps_are_sorted_and_reported():
    df = toy(timestamp=[9, 2, 1, 2, 1, 3])   # user a: 9, 2, 2, 1 (out of order)
    out, rep = clean(df)
    r = rep.to_frame().set_index('step')
    assert '1 users had rows out of time order' in r.loc['chronological order', 'reason']
    assert r.loc['chronological order', 'removed'] == 0
    assert out[out.user == 'a'].timestamp.tolist() == [1, 2, 2, 9]
    assert out[out.user == 'a'].item.tolist() == ['w', 'y', 'z', 'x']   # tie 2: y before z (file order)

def test_duplicates_removed_and_reported():
    df = pd.concat([toy(), toy().iloc[[0, 0]]], ignore_index=True)
    out, rep = clean(df)
    assert len(out) == 6 and rep.to_frame().set_index('step').loc['duplicates', 'removed'] == 2
    out2, rep2 = clean(toy(item=['x', 'x', 'x', 'z', 'w', 'y']), dedupe='user-item')
    assert out2[out2.user == 'a'].item.tolist() == ['x', 'z', 'w']

def test_report_columns():
    _, rep = clean(toy(), min_user_events=3)
    assert list(rep.to_frame().columns) == ['step', 'rows_before', 'rows_after', 'removed', 'reason']
    f = rep.to_frame(); assert (f.rows_before - f.rows_after == f.removed).all()

def test_outlier_users_and_rare_items():
    bot = pd.DataFrame({'user': ['bot'] * 50, 'item': [f'i{k}' for k in range(50)], 'timestamp': range(50)})
    df = pd.concat([toy(), bot], ignore_index=True)
    out, rep = clean(df, burst=(20, 60))
    assert 'bot' not in set(out.user)
    out, rep = clean(df, max_user_events=10)
    assert 'bot' not in set(out.user) and rep.to_frame().set_index('step').loc['heavy users', 'removed'] == 50
    out, rep = clean(df, min_item_events=2)
    assert set(out.item) == {'x', 'y'}

def test_users_with_too_few_events():
    sp = leave_one_out(toy(), n_negatives=0)
    assert sp.eval_users().tolist() == [0]            # b has 2 events: training only
    with pytest.raises(ValueError, match='no valid target'): sp.example(1, 'valid')
    out, rep = clean(toy(), min_user_events=3)
    assert set(out.user) == {'a'}

def test_kcore_cascade():
    df = pd.DataFrame({'user': list('aaabbbc'), 'item': list('xyzxyzx'), 'timestamp': range(7)})
    assert set(kcore(df, 2).user) == {'a', 'b'}
    with pytest.warns(UserWarning, match='removed every event'): assert len(kcore(df, 3)) == 0
    out = kcore(df, 3, item_k=2)
    assert (out.groupby('user').size() >= 3).all() and (out.groupby('item').size() >= 2).all()

def test_items_without_text():
    cat = pd.DataFrame({'item': ['1', '2', '3'], 'title': ['T1', 'T2', None], 'text': ['t1', '', None]})
    rep = CleaningReport()
    fixed = validate_items(cat, report=rep)
    assert fixed.text.tolist() == ['t1', 'T2', 'item 3'] and 'filled' in rep.to_frame().reason.iloc[-1]
    with pytest.raises(ValueError, match='2 items have no text'): validate_items(cat, missing_text='error')
    assert validate_items(cat, missing_text='drop').item.tolist() == ['1']
    with pytest.raises(ValueError, match="not in the catalogue"):
        validate_items(cat, pd.DataFrame({'item': ['9']}), missing_text='error')

def test_wrong_encoding(tmp_path):
    f = tmp_path / 'log.csv'
    f.write_bytes('user,item,timestamp\nJosé,Amélie,1\n'.encode('latin-1'))
    with pytest.raises(ValueError, match="cannot be decoded as utf-8.*encoding='latin-1'"):
        load_table(f)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        inter, _ = load_table(f, encoding='latin-1')
    assert inter.item.tolist() == ['Amélie']

# ---------------------------------------------------------------- load_table
def test_load_table_csv_and_parquet(tmp_path):
    log = pd.DataFrame({'uid': [3, 3, 4], 'sku': ['p', 'q', 'p'], 'when': ['2021-05-01', '2021-05-02', '2021-05-03'], 'stars': [5, 4, 3]})
    cat = pd.DataFrame({'sku': ['p', 'q'], 'name': ['Pen', None]})
    log.to_csv(tmp_path / 'log.csv', index=False); cat.to_csv(tmp_path / 'cat.csv', index=False)
    log.to_parquet(tmp_path / 'log.parquet'); cat.to_parquet(tmp_path / 'cat.parquet')
    for ext in ('csv', 'parquet'):
        inter, items = load_table(tmp_path / f'log.{ext}', columns={'user': 'uid', 'item': 'sku', 'timestamp': 'when', 'rating': 'stars'},
                                  items_path=tmp_path / f'cat.{ext}', item_columns={'item': 'sku', 'title': 'name'})
        assert inter.user.tolist() == ['3', '3', '4'] and inter.timestamp.tolist() == [1619827200, 1619913600, 1620000000]
        assert inter.rating.dtype == np.float64 and items.text.tolist() == ['Pen', 'item q']
    with pytest.raises(ValueError, match="no column for 'user'.*did you mean 'uid'|no column for 'user'"):
        load_table(tmp_path / 'log.csv', columns={'item': 'sku', 'timestamp': 'when'})
    with pytest.raises(FileNotFoundError): load_table(tmp_path / 'nope.csv')

# ---------------------------------------------------------------- real loaders
def test_ml100k_real(data_dir):
    inter, items = load_ml100k(need(data_dir, 'ml-100k'))
    assert (len(inter), inter.user.nunique(), inter.item.nunique(), len(items)) == (100000, 943, 1682, 1682)
    assert items.set_index('item').text['1'] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    assert items.title.str.contains('é').any()          # latin-1 titles decoded
    assert set(inter.rating) == {1., 2., 3., 4., 5.}

def test_ml100k_via_env_and_dataset(data_dir, monkeypatch):
    need(data_dir, 'ml-100k')
    monkeypatch.setenv('INTEREST_LLM_DATA', str(data_dir))
    assert len(load_ml100k()[0]) == 100000            # no path: found through $INTEREST_LLM_DATA
    assert len(load_dataset('ml-100k')[0]) == 100000

def test_recbole_real_matches_raw(data_dir):
    inter, items = load_recbole(need(data_dir, 'ml-100k-recbole'), 'ml-100k')
    raw, _ = load_ml100k(need(data_dir, 'ml-100k'))
    pd.testing.assert_frame_equal(inter[['user', 'item', 'timestamp', 'rating']], raw[['user', 'item', 'timestamp', 'rating']])
    assert len(items) == 1682 and items.text.str.len().min() > 0
    assert len(load_dataset('ml-100k-recbole', data_dir)[0]) == 100000

def test_ml_latest_small_real(data_dir):
    inter, items = load_ml_latest_small(need(data_dir, 'ml-latest-small'))
    assert (len(inter), inter.user.nunique(), len(items)) == (100836, 610, 9742)
    assert set(inter.item) <= set(items.item)
    assert 'pixar' in items.set_index('item').description['1']

def test_online_retail_real(data_dir):
    rep = CleaningReport()
    inter, items = load_online_retail(need(data_dir, 'uci-online-retail'), report=rep)
    r = rep.to_frame().set_index('step').removed
    assert r['missing customer'] == 135080 and r['cancellations'] == 8905
    assert inter.user.nunique() == 4334 and not inter.duplicated(['user', 'item', 'invoice']).any()
    assert set(inter.item) <= set(items.item) and items.text.str.len().min() > 0

def test_embedded_regenerates_identically(data_dir, tmp_path):
    res = make_embedded_online_retail(need(data_dir, 'uci-online-retail'), tmp_path)
    assert res['sha256'] == EMBEDDED_SHA256

def test_online_retail_fixture(fixtures_dir):
    rep = CleaningReport()
    inter, items = load_online_retail(fixtures_dir / 'online-retail', report=rep)
    r = rep.to_frame().set_index('step').removed
    assert (r['missing customer'], r['cancellations'], r['non-product codes'], r['non-positive qty/price'],
            r['one event per invoice']) == (1, 1, 1, 1, 1)
    assert inter[inter.user == '17850'][['item', 'weight']].values.tolist() == [['85123A', 6.0], ['71053', 8.0], ['22633', 6.0]]
    assert set(inter.user) == {'17850', '13047', '12583'}
    t = items.set_index('item').text
    assert t['85123A'] == 'WHITE HANGING HEART T-LIGHT HOLDER' and t['22960'] == 'JAM MAKING SET, WITH JARS'

def test_ml1m_fixture_latin1(fixtures_dir):
    inter, items = load_ml1m(fixtures_dir / 'ml-1m')
    assert (len(inter), inter.user.nunique()) == (10, 3)
    assert items.set_index('item').title['3409'].startswith('Amélie')
    assert items.set_index('item').text['661'] == "James and the Giant Peach (1996). Genres: Animation, Children's, Musical."
    assert inter.timestamp.dtype == np.int64 and inter.rating.tolist()[0] == 5.0

def test_missing_movielens_files_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"must hold \['ratings.dat', 'movies.dat'\]"): load_ml1m(tmp_path)

# ---------------------------------------------------------------- downloads and archives
def _offline(url, dest, timeout=60): raise urllib.error.URLError('no network')

def test_offline_message_names_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setattr(D, '_urlretrieve', _offline)
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('INTEREST_LLM_DATA', raising=False)
    with pytest.raises(FileNotFoundError) as e: load_ml1m()
    msg = str(e.value)
    assert str(tmp_path / 'cache' / 'ml-1m') in msg and 'ratings.dat' in msg and 'INTEREST_LLM_DATA' in msg

def test_download_checks_md5(tmp_path, monkeypatch):
    def fake(url, dest, timeout=60):
        with zipfile.ZipFile(dest, 'w') as z: z.writestr('ml-100k/u.data', '1\t1\t1\t1\n')
    monkeypatch.setattr(D, '_urlretrieve', fake)
    with pytest.raises(ValueError, match='MD5 differs'): download_movielens('ml-100k', cache=tmp_path)
    assert not (tmp_path / 'ml-100k.zip').exists()   # the bad file is removed
    with pytest.raises(ValueError, match='unknown MovieLens'): download_movielens('ml-2m', cache=tmp_path)

def test_download_verifies_and_extracts(data_dir, tmp_path, monkeypatch):
    src = need(data_dir, 'ml-latest-small')
    def fake(url, dest, timeout=60):
        assert url == 'https://files.grouplens.org/datasets/movielens/ml-latest-small.zip'
        with zipfile.ZipFile(dest, 'w') as z:
            for f in ['ratings.csv', 'movies.csv', 'tags.csv']: z.write(src / f, f'ml-latest-small/{f}')
    monkeypatch.setattr(D, '_urlretrieve', fake)
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(tmp_path)); monkeypatch.delenv('INTEREST_LLM_DATA', raising=False)
    inter, _ = load_ml_latest_small()
    assert len(inter) == 100836 and (tmp_path / 'ml-latest-small.zip.sha256').exists()
    assert len(load_dataset('ml-latest-small')[0]) == 100836   # now served from the cache
    zp = tmp_path / 'ml-latest-small.zip'   # a changed zip: its sha256 no longer matches the one recorded at first download
    with zipfile.ZipFile(zp, 'w') as z: z.writestr('ml-latest-small/ratings.csv', 'userId,movieId,rating,timestamp\n1,1,4.0,1\n')
    with pytest.raises(ValueError, match='recorded at first download'): download_movielens('ml-latest-small')
    (tmp_path / 'ml-latest-small.zip.sha256').unlink()   # no record: the extracted file's known sha256 still catches it
    with pytest.raises(ValueError, match='sha256 differs from the recorded'): download_movielens('ml-latest-small')

@pytest.mark.parametrize('name', ['../evil.txt', '/tmp/evil.txt', 'a/../../evil.txt'])
def test_safe_extract_refuses_zip_traversal(tmp_path, name):
    z = tmp_path / 'evil.zip'
    with zipfile.ZipFile(z, 'w') as f: f.writestr('fine.txt', 'ok'); f.writestr(name, 'bad')
    with pytest.raises(ValueError, match='unsafe archive member'): safe_extract(z, tmp_path / 'out')
    assert not (tmp_path / 'out' / 'fine.txt').exists()

@pytest.mark.parametrize('kind', ['dotdot', 'absolute', 'symlink'])
def test_safe_extract_refuses_tar(tmp_path, kind):
    t = tmp_path / 'evil.tar.gz'
    with tarfile.open(t, 'w:gz') as f:
        data = b'bad'
        info = tarfile.TarInfo({'dotdot': '../evil.txt', 'absolute': '/tmp/evil.txt', 'symlink': 'link'}[kind])
        if kind == 'symlink': info.type, info.linkname = tarfile.SYMTYPE, '/etc/passwd'; f.addfile(info)
        else: info.size = len(data); f.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match='unsafe archive member'): safe_extract(t, tmp_path / 'out')

def test_safe_extract_ok_tar(tmp_path):
    t = tmp_path / 'ok.tar'
    with tarfile.open(t, 'w') as f:
        info = tarfile.TarInfo('d/x.txt'); info.size = 2; f.addfile(info, io.BytesIO(b'hi'))
    assert (safe_extract(t, tmp_path / 'out') / 'd' / 'x.txt').read_text() == 'hi'
    (tmp_path / 'plain.txt').write_text('x')
    with pytest.raises(ValueError, match='not a zip or tar'): safe_extract(tmp_path / 'plain.txt', tmp_path / 'o2')

# ---------------------------------------------------------------- embedded data set
def test_embedded_stats():
    inter, items = load_embedded()
    s = describe_interactions(inter)
    assert (s['events'], s['users'], s['items']) == (209991, 4077, 2500)
    assert s['events_per_user']['min'] >= 5 and s['events_per_item']['min'] >= 5
    assert items.item.is_unique and set(inter.item) == set(items.item) and (items.text.str.len() > 0).all()
    assert list(inter.columns) == ['user', 'item', 'timestamp', 'weight']
    md = (embedded_dir() / 'ONLINE_RETAIL.md').read_text()
    assert all(h in md for h in EMBEDDED_SHA256.values()) and 'CC BY 4.0' in md

def test_embedded_corruption_detected(tmp_path, monkeypatch):
    for f in EMBEDDED_FILES.values(): shutil.copy(embedded_dir() / f, tmp_path / f)
    p = tmp_path / EMBEDDED_FILES['items']; p.write_bytes(p.read_bytes()[:-10] + b'0' * 10)
    monkeypatch.setattr(D, 'embedded_dir', lambda: tmp_path)
    with pytest.raises(ValueError, match='sha256 mismatch'): load_embedded()

def test_load_dataset_names():
    with pytest.raises(ValueError, match="did you mean 'online-retail'"): load_dataset('online_retail')
    inter, items = load_dataset('simulated'); validate_interactions(inter)
    with pytest.raises(FileNotFoundError, match='needs data_dir'): load_dataset('ml-100k-recbole', data_dir='/nonexistent')

# ---------------------------------------------------------------- simulator
def test_simulator_truth_and_known_drift_rate():
    inter, items, truth = simulate_drift(n_users=30, n_items=96, n_topics=6, n_steps=(5, 15), drift=0.2, seed=4)
    validate_interactions(inter)
    assert truth.interest.shape == (30, 15, 6) and len(truth.lengths) == 30
    assert (inter.groupby('user').size().sort_index().to_numpy() == truth.lengths).all()
    assert set(truth.item_topic) == set(items.item) and not inter.duplicated(['user', 'item']).any()
    th = truth.interest
    for u in range(30):   # theta_{t+1} - (1 - rho) theta_t = rho * eta_t with eta_t on the simplex: the rate is exact
        n = truth.lengths[u]; step = th[u, 1:n] - 0.8 * th[u, :n - 1]
        assert (step >= -1e-12).all() and np.allclose(step.sum(-1), 0.2)
        assert np.isnan(th[u, n:]).all()
    assert items.text.str.contains('item').all() and 'genres' in items
    a, b = simulate_drift(n_users=5, seed=1), simulate_drift(n_users=5, seed=1)
    pd.testing.assert_frame_equal(a[0], b[0])
    with pytest.raises(ValueError, match='n_topics'): simulate_drift(n_topics=40)
    with pytest.raises(ValueError, match='drift'): simulate_drift(drift=1.5)

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
