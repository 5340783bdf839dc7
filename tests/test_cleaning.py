"""Tests of interest_llm.cleaning: the report, missing values, normalisation, duplicates, outliers, k-cores and the
item catalogue."""
import pandas as pd, pytest
from interest_llm.cleaning import *

def toy(**kw):
    d = dict(user=['a', 'a', 'b', 'a', 'a', 'b'], item=['x', 'y', 'x', 'z', 'w', 'y'], timestamp=[1, 2, 1, 2, 9, 3])
    d.update(kw); return pd.DataFrame(d)

def test_missing_ids_dropped_and_reported():
    df = toy(user=['a', None, 'b', 'a', 'a', 'b'])
    out, rep = clean(df)   # the repair: dropped and reported
    assert len(out) == 5 and rep.to_frame().set_index('step').loc['missing values', 'removed'] == 1
    with pytest.raises(ValueError, match='missing values'): clean(df, missing='error')

def test_users_with_too_few_events_removed():
    out, rep = clean(toy(), min_user_events=3)
    assert set(out.user) == {'a'}

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

def test_normalise_reports_each_column():
    _, rep = clean(toy(user=[' a', 'a', 'b', 'a', 'a', 'b'], item=['x', 'y ', ' x', 'z', 'w', 'y']))
    reason = rep.to_frame().set_index('step').loc['normalise', 'reason']
    assert '(1 user and 2 item ids with surrounding spaces)' in reason

# ---------------------------------------------------------------- bad input
def test_validate_items_without_text(sim):
    "Items without text: an error on request, else the documented repair (the title), reported."
    _, items, sp = sim
    with pytest.raises(ValueError, match=r"1 items have no text, e.g. 'i0000'"):
        validate_items(items.assign(text=[None] + items.text.tolist()[1:]), missing_text='error')
    rep = CleaningReport()
    fixed = validate_items(items.assign(text=[None] + items.text.tolist()[1:]), report=rep)   # documented repair, reported
    assert fixed.text.iloc[0] == items.title.iloc[0] and 'items without text' in rep.to_frame().step.tolist()

# ---------------------------------------------------------------- exact times, columns of a raw table, coverage
import warnings
import numpy as np

T = 1_600_000_000
EXACT = {'epoch ms': [T * 1000, (T + 1) * 1000 + 900, (T + 1) * 1000 + 100],
         'epoch ns': [T * 10**9, (T + 1) * 10**9 + 900_000_000, (T + 1) * 10**9 + 100_000_000],
         'float seconds': [float(T), T + 1.9, T + 1.1],
         'ISO strings': ['2020-09-13T12:26:40', '2020-09-13T12:26:41.9', '2020-09-13T12:26:41.1'],
         'datetimes': list(pd.to_datetime(['2020-09-13 12:26:40', '2020-09-13 12:26:41.9', '2020-09-13 12:26:41.1'], format='ISO8601'))}

@pytest.mark.parametrize('fmt', list(EXACT))
def test_clean_orders_inside_a_second_by_the_exact_times(fmt):
    df = pd.DataFrame({'user': ['u'] * 3, 'item': ['a', 'later', 'earlier'], 'timestamp': EXACT[fmt]})
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        out, rep = clean(df)
    assert out.item.tolist() == ['a', 'earlier', 'later'] and out.timestamp.tolist() == [T, T + 1, T + 1]
    assert '1 users had rows out of time order' in rep.steps[-1]['reason'] and '_exact_ns' not in out

def test_exact_repeats_are_exact_to_the_millisecond():
    df = pd.DataFrame({'user': ['u'] * 3, 'item': ['a'] * 3, 'timestamp': ['2021-01-01 10:00:00.1', '2021-01-01 10:00:00.1',
                                                                          '2021-01-01 10:00:00.6']})
    out, rep = clean(df)
    assert len(out) == 2 and rep.to_frame().set_index('step').loc['duplicates', 'removed'] == 1

def test_map_columns_named_column_wins_and_names_the_fix():
    raw = pd.DataFrame({'customer': ['c'], 'user': ['x'], 'item': ['i'], 'when': [1], 'timestamp': [9]})
    with pytest.warns(UserWarning, match=r"\['user', 'timestamp'\] not read"):
        out = map_columns(raw, {'user': 'customer', 'item': 'item', 'timestamp': 'when'})
    assert out.columns.tolist() == ['user', 'item', 'timestamp'] and out.iloc[0].tolist() == ['c', 'i', 1]
    with pytest.warns(UserWarning, match=r"\['timestamp'\] not read"):                   # a swap is no conflict
        swapped = map_columns(raw, {'user': 'item', 'item': 'user', 'timestamp': 'when'})
    assert swapped[['user', 'item']].iloc[0].tolist() == ['i', 'x']
    with pytest.raises(ValueError, match=r"log.csv: column\(s\) 'client' \(for 'user'\).*--user-col COLUMN"):
        map_columns(raw, {'user': 'client'}, source='log.csv')
    with pytest.raises(ValueError, match=r"no column for 'text'.*item_columns=\{'text': COLUMN\} \(command line: --text-col"):
        map_columns(raw, {}, ('item', 'text'), 'items.csv', 'items_')

def test_usable_columns_leave_out_a_column_of_words_unless_asked_for():
    df = pd.DataFrame({'user': ['u'], 'item': ['i'], 'timestamp': [1], 'rating': ['good'], 'weight': ['2'], 'x': [0]})
    with pytest.warns(UserWarning, match="'rating' holds values that are not numbers"):
        assert usable_columns(df, {}).columns.tolist() == ['user', 'item', 'timestamp', 'weight']
    assert 'rating' in usable_columns(df, {'rating': 'stars'}).columns          # asked for: must parse, later

def test_a_catalogue_missing_most_of_the_log_is_refused():
    log = pd.DataFrame({'item': ['1', '2', '3', '4']})
    cat = pd.DataFrame({'item': ['1', 'P-2', 'P-3', 'P-4'], 'text': ['a', 'b', 'c', 'd']})
    with pytest.raises(ValueError, match=r"only 1 of the log's 4 items .*--items-item-col"): validate_items(cat, log)
    assert len(validate_items(cat, log, min_coverage=0)) == 7                     # asked for: ids as texts
    assert len(validate_items(cat.assign(item=['1', '2', 'P-3', 'P-4']), log)) == 6   # half is enough
