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
