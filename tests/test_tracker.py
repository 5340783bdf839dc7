"Real-time tracker (nbs/26_tracker.ipynb): tracker == batch scores, bad input, time policy, independent users."
import warnings
import numpy as np, pandas as pd, pytest, torch
from interest_llm.data import epoch_unit
from interest_llm.data import leave_one_out
from interest_llm.simulate import simulate_drift
from interest_llm.model import ModelConfig, InterestModel
from interest_llm.tracker import InterestTracker

@pytest.fixture(scope='module')
def setup():
    inter, items, _ = simulate_drift(n_users=12, n_items=60, n_topics=4, n_steps=(5, 30), seed=3)
    split = leave_one_out(inter, n_negatives=0)
    torch.manual_seed(0)
    text = torch.randn(split.n_items + 1, 8); text[0] = 0
    models = {c: InterestModel(ModelConfig(n_items=split.n_items, text_dim=8, item_repr='both', emb_dim=16, hidden_dim=16,
                                           latent_dim=4, cell=c), text, item_ids=split.item_ids).eval() for c in ('lstm', 'gru')}
    return split, models

def batch_scores(model, s, t):
    gaps = torch.from_numpy(np.diff(t, prepend=t[:1]).astype(np.float32))[None]
    with torch.no_grad(): return model.score(dict(items=torch.from_numpy(s)[None], gaps=gaps, lengths=torch.tensor([len(s)])))[0]

@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_tracker_equals_batch(setup, cell):
    split, models = setup; model = models[cell]
    tr = InterestTracker(model, split)
    for u in range(split.n_users):
        s, t = split.seqs[u][:model.cfg.max_len], split.times[u][:model.cfg.max_len]
        assert (np.diff(t) > 0).any()                                    # real time gaps are exercised
        for i, ts in zip(s, t): tr.update(split.users[u], split.item_ids[i], int(ts))
        torch.testing.assert_close(tr.scores(split.users[u])[1:], batch_scores(model, s, t)[1:], atol=1e-5, rtol=0)

def test_topk_matches_scores(setup):
    split, models = setup; tr = InterestTracker(models['lstm'], split, k=7)
    s, t = split.seqs[0], split.times[0]
    for i, ts in zip(s, t): top = tr.update('a', split.item_ids[i], int(ts))
    ref = torch.topk(batch_scores(models['lstm'], s, t), 7).indices.numpy()
    assert top['item'].tolist() == split.item_ids[ref].tolist() and len(top) == 7
    # the share column is the softmax over the whole catalogue (the distribution the CE trains), seen items included
    pi = torch.softmax(batch_scores(models['lstm'], s, t), 0).numpy()
    assert 'prob' not in top and np.allclose(top['share'], pi[ref], atol=1e-6)

def test_topk_of_a_bce_model_reports_probabilities(setup):
    "A model trained with loss='bce' scores each item on its own: its top-k carries sigma(score) as `prob`."
    import dataclasses
    split, models = setup; m = models['lstm']
    bce = InterestModel(dataclasses.replace(m.cfg, loss='bce'), m.text_emb, item_ids=split.item_ids).eval()
    bce.load_state_dict(m.state_dict())
    top = InterestTracker(bce, split, k=5).update('a', split.item_ids[split.seqs[0][0]], int(split.times[0][0]))
    assert 'share' not in top and np.allclose(top['prob'], 1 / (1 + np.exp(-top['score'])))

def test_unknown_item_and_bad_time(setup):
    split, models = setup; tr = InterestTracker(models['lstm'], split)
    with pytest.raises(ValueError, match="unknown item id 'nope'"): tr.update('a', 'nope', 0)
    with pytest.raises(ValueError, match="unknown item id"): tr.update('a', '<pad>', 0)   # padding is not an item
    with pytest.raises(ValueError, match='finite'): tr.update('a', split.item_ids[1], float('nan'))
    with pytest.raises(ValueError, match='finite'): tr.update('a', split.item_ids[1], float('inf'))
    assert 'a' not in tr.states                                           # nothing was recorded
    with pytest.raises(KeyError, match='no events yet'): tr.scores('a')

def test_out_of_order_policies(setup):
    split, models = setup; m = models['lstm']; a, b = split.item_ids[1], split.item_ids[2]
    tr = InterestTracker(m, split)
    tr.update('u', a, 1000)
    with pytest.raises(ValueError, match='earlier than the previous event'): tr.update('u', b, 999)
    assert tr.states['u'].n_events == 1
    clamp, ref = InterestTracker(m, split, out_of_order='clamp'), InterestTracker(m, split)
    clamp.observe('u', a, 1000); clamp.observe('u', b, 10)                # late event: gap 0, clock stays at 1000
    ref.observe('u', a, 1000); ref.observe('u', b, 1000)
    torch.testing.assert_close(clamp.scores('u'), ref.scores('u'))
    assert clamp.states['u'].last_time == 1000
    drop = InterestTracker(m, split, out_of_order='drop')
    drop.observe('u', a, 1000); before = drop.scores('u').clone()
    assert drop.observe('u', b, 10) is False and drop.dropped == 1
    torch.testing.assert_close(drop.scores('u'), before)
    with pytest.raises(ValueError, match='out_of_order must be one of'): InterestTracker(m, split, out_of_order='ignore')

def test_many_users_independent(setup):
    split, models = setup; m = models['gru']
    ev = [(split.users[u], split.item_ids[i], int(ts)) for u in range(6) for i, ts in zip(split.seqs[u][:10], split.times[u][:10])]
    rng = np.random.default_rng(1)
    pos = pd.Series([e[0] for e in ev]).groupby([e[0] for e in ev]).cumcount().to_numpy()
    keys = pos + rng.random(len(ev))                                      # interleave users, keep each user's order
    mixed, alone = InterestTracker(m, split), {}
    for j in np.argsort(keys, kind='stable'): mixed.observe(*ev[j])
    batched = InterestTracker(m, split); batched.update_many(*map(list, zip(*ev)))
    for u in range(6):
        solo = InterestTracker(m, split)
        for e in ev:
            if e[0] == split.users[u]: solo.observe(*e)
        torch.testing.assert_close(mixed.scores(split.users[u]), solo.scores(split.users[u]), atol=1e-6, rtol=0)
        torch.testing.assert_close(batched.scores(split.users[u]), solo.scores(split.users[u]), atol=1e-5, rtol=0)
    mixed.reset(split.users[0]); assert split.users[0] not in mixed.states and split.users[1] in mixed.states

def test_warm_start_then_update(setup):
    split, models = setup; m = models['lstm']; u = int(np.argmax([len(s) for s in split.seqs]))
    s, t = split.seqs[u], split.times[u]
    warm = InterestTracker(m, split).warm_start('x', split.item_ids[s[:-1]], t[:-1])
    warm.update('x', split.item_ids[s[-1]], int(t[-1]))
    torch.testing.assert_close(warm.scores('x')[1:], batch_scores(m, s, t)[1:], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match='go backwards'): warm.warm_start('y', split.item_ids[s[:2]], [5, 4])

def test_exclude_seen(setup):
    split, models = setup; tr = InterestTracker(models['lstm'], split, k=split.n_items, exclude_seen=True)
    s, t = split.seqs[0][:5], split.times[0][:5]
    for i, ts in zip(s, t): top = tr.update('a', split.item_ids[i], int(ts))
    assert not set(split.item_ids[s]) & set(top['item'][np.isfinite(top['score'])])

def test_tracker_bad_input(sim, interest_model):
    _, _, sp = sim
    m, _ = interest_model(sp)
    with pytest.raises(ValueError, match=r'item_ids has 3 entries but the model scores n_items\+1'): InterestTracker(m, sp.item_ids[:3])
    with pytest.raises(ValueError, match=r'out_of_order must be one of'): InterestTracker(m, sp, out_of_order='sometimes')
    tr = InterestTracker(m, sp, k=5)
    item = str(sp.item_ids[1])
    with pytest.raises(ValueError, match=r"unknown item id 'no-such-item'"): tr.update('u1', 'no-such-item', 1_600_000_000)
    with pytest.raises(ValueError, match=r'timestamp must be Unix seconds or a datetime'): tr.update('u1', item, 'soon')
    with pytest.raises(ValueError, match=r'timestamp must be finite'): tr.update('u1', item, float('nan'))
    with pytest.raises(KeyError, match=r"user 'ghost' has no events yet"): tr.scores('ghost') if hasattr(tr, 'scores') else tr.topk('ghost')
    tr.update('u1', item, 1_600_000_100)
    with pytest.raises(ValueError, match=r"user 'u1': event at 1600000000 is earlier than the previous event"): tr.update('u1', item, 1_600_000_000)

# ---------------------------------------------------------------- events read as the batch path reads them
def test_user_ids_are_normalised_as_item_ids_are(setup):
    split, models = setup; tr = InterestTracker(models['lstm'], split)
    a, b = split.item_ids[1], split.item_ids[2]
    tr.observe(7, a, 1000); tr.observe('7', b, 1010); tr.observe(7.0, a, 1020); tr.observe(np.int64(7), b, 1030)
    assert list(tr.states) == ['7'] and tr.states['7'].n_events == 4
    torch.testing.assert_close(tr.scores(7), tr.scores('7'))
    assert tr.topk(7.0, 3).shape[0] == 3
    tr.reset(7); assert not tr.states
    assert tr.update_many([7, '7'], [a, b], [1, 2]) == 2 and tr.states['7'].n_events == 2

def test_epoch_milliseconds_are_converted_as_in_training(setup):
    split, models = setup; m = models['lstm']
    s, t = split.seqs[0][:8], split.times[0][:8]
    ms, sec = InterestTracker(m, split), InterestTracker(m, split)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        for i, ts in zip(s, t): ms.observe('u', split.item_ids[i], int(ts) * 1000)
        ms.update_many(['v'] * len(s), split.item_ids[s].tolist(), [int(x) * 1000 for x in t])
    for i, ts in zip(s, t): sec.observe('u', split.item_ids[i], int(ts))
    assert [epoch_unit(int(t[0]) * 1000)[1] in str(x.message) for x in w] == [True]   # said once, in the helper's words
    assert ms.states['u'].last_time == int(t[-1])
    torch.testing.assert_close(ms.scores('u'), sec.scores('u'))
    torch.testing.assert_close(ms.scores('v'), sec.scores('u'), atol=1e-5, rtol=0)

def test_an_exact_repeat_is_skipped_and_counted(setup):
    split, models = setup; m = models['gru']
    a, b = split.item_ids[1], split.item_ids[2]
    once, twice = InterestTracker(m, split), InterestTracker(m, split)
    for e in [('u', a, 100), ('u', b, 200)]: once.observe(*e)
    assert [twice.observe(*e) for e in [('u', a, 100), ('u', a, 100), ('u', b, 200), ('u', b, 200)]] == [True, False, True, False]
    assert (twice.repeated, twice.states['u'].n_events) == (2, 2)
    torch.testing.assert_close(twice.scores('u'), once.scores('u'))
    batch = InterestTracker(m, split)
    assert batch.update_many(['u', 'u', 'u', 'x'], [a, a, b, a], [100, 100, 200, 100]) == 3 and batch.repeated == 1
    torch.testing.assert_close(batch.scores('u'), once.scores('u'), atol=1e-5, rtol=0)
    assert twice.observe('u', a, 200) is True                         # same item, another time: a new event
    warm = InterestTracker(m, split).warm_start('u', [a, a, b], [100, 100, 200])
    assert (warm.repeated, warm.states['u'].n_events) == (1, 2)
    torch.testing.assert_close(warm.scores('u'), once.scores('u'), atol=1e-5, rtol=0)
