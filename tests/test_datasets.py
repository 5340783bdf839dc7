"""Tests of interest_llm.datasets: loaders on real files (skipped without the shared data) and on fixtures, bad
input, loading through a (faked) download, the embedded data set and the registry of data sets."""
import io, os, shutil, tarfile, urllib.error, warnings, zipfile
import numpy as np, pandas as pd, pytest
import interest_llm.datasets as DS
import interest_llm.download as DL
from interest_llm.data import DataError, validate_interactions
from interest_llm.cleaning import CleaningReport, describe_interactions
from interest_llm.download import download_movielens
from interest_llm.datasets import *

def need(data_dir, sub):
    p = data_dir / sub
    if not p.exists(): pytest.skip(f'{p} not found')
    return p

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

# ---------------------------------------------------------------- loading through the download
def _offline(url, dest, timeout=60): raise urllib.error.URLError('no network')

def test_offline_message_names_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.setattr(DL, '_urlretrieve', _offline)
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('INTEREST_LLM_DATA', raising=False)
    with pytest.raises(FileNotFoundError) as e: load_ml1m()
    msg = str(e.value)
    assert str(tmp_path / 'cache' / 'ml-1m') in msg and 'ratings.dat' in msg and 'INTEREST_LLM_DATA' in msg

def test_download_verifies_and_extracts(data_dir, tmp_path, monkeypatch):
    src = need(data_dir, 'ml-latest-small')
    def fake(url, dest, timeout=60):
        assert url == 'https://files.grouplens.org/datasets/movielens/ml-latest-small.zip'
        with zipfile.ZipFile(dest, 'w') as z:
            for f in ['ratings.csv', 'movies.csv', 'tags.csv']: z.write(src / f, f'ml-latest-small/{f}')
    monkeypatch.setattr(DL, '_urlretrieve', fake)
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(tmp_path)); monkeypatch.delenv('INTEREST_LLM_DATA', raising=False)
    inter, _ = load_ml_latest_small()
    assert len(inter) == 100836 and (tmp_path / 'ml-latest-small.zip.sha256').exists()
    assert len(load_dataset('ml-latest-small')[0]) == 100836   # now served from the cache
    zp = tmp_path / 'ml-latest-small.zip'   # a changed zip: its sha256 no longer matches the one recorded at first download
    with zipfile.ZipFile(zp, 'w') as z: z.writestr('ml-latest-small/ratings.csv', 'userId,movieId,rating,timestamp\n1,1,4.0,1\n')
    with pytest.raises(ValueError, match='recorded at first download'): download_movielens('ml-latest-small')
    (tmp_path / 'ml-latest-small.zip.sha256').unlink()   # no record: the extracted file's known sha256 still catches it
    with pytest.raises(ValueError, match='sha256 differs from the recorded'): download_movielens('ml-latest-small')

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
    monkeypatch.setattr(DS, 'embedded_dir', lambda: tmp_path)
    with pytest.raises(ValueError, match='sha256 mismatch'): load_embedded()

def test_load_dataset_names():
    with pytest.raises(ValueError, match="did you mean 'online-retail'"): load_dataset('online_retail')
    inter, items = load_dataset('simulated'); validate_interactions(inter)
    with pytest.raises(FileNotFoundError, match='needs data_dir'): load_dataset('ml-100k-recbole', data_dir='/nonexistent')

def test_registry_is_readable():
    assert DATASETS['ml-100k'].folder == 'ml-100k' and DATASETS['amazon-office'].folder == 'amazon-office-2014'
    assert DATASETS['online-retail-raw'].folder == 'uci-online-retail' and DATASETS['online-retail'].folder is None
    assert all(isinstance(s, DatasetSpec) and s.description for s in DATASETS.values())
    assert [n for n, s in DATASETS.items() if s.downloadable] == ['ml-100k', 'ml-1m', 'ml-latest-small']
    assert not DATASETS['amazon-office'].redistributable and DATASETS['online-retail'].redistributable

def test_load_dataset_uses_the_registry(tmp_path, monkeypatch):
    (tmp_path / 'my-folder').mkdir()
    spec = DatasetSpec(lambda folder: ('loaded', folder), 'my-folder', 'a test entry', True, False)
    monkeypatch.setitem(DATASETS, 'mine', spec)
    assert load_dataset('mine', tmp_path) == ('loaded', tmp_path / 'my-folder')
    with pytest.raises(FileNotFoundError, match='holding my-folder/'): load_dataset('mine', tmp_path / 'nope')

def test_download_names_moved():
    import interest_llm.download
    with pytest.warns(DeprecationWarning, match='interest_llm.download.safe_extract'):
        assert DS.safe_extract is interest_llm.download.safe_extract
    assert DS.download_movielens is interest_llm.download.download_movielens   # used here: no warning

# ---------------------------------------------------------------- bad input
def test_loaders_missing_files_and_unknown_names(tmp_path):
    with pytest.raises(ValueError, match=r"unknown data set 'ml100k' \(did you mean 'ml-100k'\?\)"): DS.load_dataset('ml100k')
    for fn in (DS.load_table, DS.load_online_retail, DS.load_recbole):
        with pytest.raises((FileNotFoundError, ValueError), match=r'no-such|not found|does not exist|No such'):
            fn(tmp_path / 'no-such.csv')

def test_load_table_bad_content(tmp_path):
    p = tmp_path / 'log.csv'
    p.write_text('uid,iid,when\n1,10,2020-01-01\n2,11,not-a-date\n')
    with pytest.raises(ValueError, match=r"unparseable value\(s\), e.g. row 1: 'not-a-date'"):
        DS.load_table(p, columns={'user': 'uid', 'item': 'iid', 'timestamp': 'when'})
    with pytest.raises(ValueError, match=r"'user'"): DS.load_table(p, columns={'user': 'nope', 'item': 'iid', 'timestamp': 'when'})

def test_amazon_office_loader(data_dir):
    "The sparse, text-rich Amazon set: the published sequences in order, real review days as timestamps, product text."
    from interest_llm.data import leave_one_out
    from interest_llm.datasets import load_dataset
    if not (data_dir / 'amazon-office-2014').is_dir(): pytest.skip('amazon-office-2014/ not in the shared data')
    inter, items = load_dataset('amazon-office', data_dir=data_dir)
    assert (len(inter), inter.user.nunique(), inter.item.nunique()) == (53258, 4905, 2420)
    pos = pd.read_csv(data_dir / 'amazon-office-2014' / 'interactions.csv', dtype={'user': str, 'item': str})
    split = leave_one_out(inter, seed=0)                           # order by day keeps the published order on equal days
    by_user = pos.groupby('user', sort=False).item.apply(list)
    for u in split.users[:500]: assert list(split.item_ids[split.seqs[split.users.tolist().index(u)]]) == by_user[u]
    assert inter.timestamp.min() > 9e8                             # Unix seconds of real review days, not positions
    t = items.set_index('item').text
    assert t.str.len().min() > 10 and not items.title.str.contains('&amp;').any()   # HTML entities of the titles decoded

# ---------------------------------------------------------------- a user's table: formats, ids, per-file options
def test_load_table_float_ids_agree_between_csv_and_parquet(tmp_path):
    "Ids pandas wrote as floats (an int column with a NaN) are the int ids, in a CSV as in a Parquet file."
    log = pd.DataFrame({'user': [1.0, 1.0, 2.0, np.nan], 'item': [20.0, 21.0, 20.0, 22.0], 'timestamp': [1, 2, 3, 4]})
    log.to_csv(tmp_path / 'log.csv', index=False); log.to_parquet(tmp_path / 'log.parquet')
    (tmp_path / 'items.csv').write_text('item,text\n20,twenty\n21,twenty-one\n')
    got = [load_table(tmp_path / f'log.{ext}', items_path=tmp_path / 'items.csv', cleaning=True) for ext in ('csv', 'parquet')]
    for inter, items in got:
        assert inter.user.tolist() == ['1', '1', '2'] and inter.item.tolist() == ['20', '21', '20']
        assert dict(zip(items.item, items.text)) == {'20': 'twenty', '21': 'twenty-one'}

def test_load_table_options_of_the_item_file(tmp_path):
    (tmp_path / 'log.tsv').write_text('user\tsku\ttimestamp\nu\tp1\t1\nu\tp2\t2\n')
    (tmp_path / 'items.csv').write_bytes('id;text\np1;caf\u00e9\np2;cr\u00e8me\n'.encode('latin-1'))
    kw = dict(columns={'item': 'sku'}, items_path=tmp_path / 'items.csv', sep='tab')
    with pytest.raises(DataError, match=r"items.csv: cannot be decoded as utf-8 .*items_encoding='latin-1' \(command line: --items-encoding latin-1"):
        load_table(tmp_path / 'log.tsv', **kw)
    with pytest.raises(DataError, match=r"items.csv: .* pass items_sep=';' \(command line: --items-sep ';'\)"):
        load_table(tmp_path / 'log.tsv', items_encoding='latin-1', **kw)
    with pytest.raises(DataError, match=r"items.csv: column\(s\) 'sku' \(for 'item'\).*--items-item-col COLUMN"):
        load_table(tmp_path / 'log.tsv', items_encoding='latin-1', items_sep=';', item_columns={'item': 'sku'}, **kw)
    _, items = load_table(tmp_path / 'log.tsv', items_encoding='latin-1', items_sep=';', item_columns={'item': 'id'}, **kw)
    assert items.text.tolist() == ['caf\u00e9', 'cr\u00e8me']

def test_load_table_says_what_a_path_is(tmp_path):
    (tmp_path / 'd').mkdir()
    with pytest.raises(DataError, match='is a directory, not a file'): load_table(tmp_path / 'd')
    with pytest.raises(FileNotFoundError, match='does not exist'): load_table(tmp_path / 'nope.csv')
    if hasattr(os, 'mkfifo'):
        os.mkfifo(tmp_path / 'p.csv')
        with pytest.raises(DataError, match='not a regular file'): load_table(tmp_path / 'p.csv')
    (tmp_path / 'book.csv').write_bytes(b'\xd0\xcf\x11\xe0 an old Excel workbook under a .csv name')
    with pytest.raises(DataError, match='book.csv: .*Excel'): load_table(tmp_path / 'book.csv')

def test_load_table_reads_excel(tmp_path):
    pytest.importorskip('openpyxl')
    pd.DataFrame({'user': ['u', 'u'], 'item': ['007', '7'], 'when': pd.to_datetime(['2021-01-01 10:00', '2021-01-02 00:00'])}
                 ).to_excel(tmp_path / 'log.xlsx', index=False)
    with pytest.warns(UserWarning, match='no item table given'): inter, _ = load_table(tmp_path / 'log.xlsx', columns={'timestamp': 'when'})
    assert inter.item.tolist() == ['007', '7'] and inter.timestamp.tolist() == [1609495200, 1609545600]

def test_load_table_no_clean_keeps_the_rows_in_exact_time_order(tmp_path):
    (tmp_path / 'log.csv').write_text('user,item,timestamp\nu,a,1600000000000\nu,b,1600000001900\nu,c,1600000001100\n'
                                      'u,c,1600000001100\n')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        inter, _ = load_table(tmp_path / 'log.csv')                                # cleaning=False: the repeat stays
    assert inter.item.tolist() == ['a', 'c', 'c', 'b']
    (tmp_path / 'log.csv').write_text('user,item,timestamp\nu,a,1\nu,,2\n')
    with pytest.raises(DataError, match=r"missing values in \['item'\].*leave out --no-clean"): load_table(tmp_path / 'log.csv')

def test_load_table_gzip_and_utf16_whatever_their_names(tmp_path):
    "A gzip file named .csv is read; a UTF-16 file read as utf-8 is refused with the encoding that works."
    import gzip
    (tmp_path / 'log.csv').write_bytes(gzip.compress(b'user,item,timestamp\nu,a,1\nu,b,2\n'))
    with pytest.warns(UserWarning, match='no item table'): assert load_table(tmp_path / 'log.csv')[0].item.tolist() == ['a', 'b']
    (tmp_path / 'wide.csv').write_bytes('user,item,timestamp\nu,caf\u00e9,1\n'.encode('utf-16'))
    with pytest.raises(DataError, match=r"pass encoding='utf-16' \(command line: --encoding utf-16\)"): load_table(tmp_path / 'wide.csv')
    with pytest.warns(UserWarning): assert load_table(tmp_path / 'wide.csv', encoding='utf-16')[0].item.tolist() == ['caf\u00e9']
