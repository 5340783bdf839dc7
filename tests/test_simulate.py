"""Tests of interest_llm.simulate: the drift simulator's truth, synthetic logs of any size, two populations."""
import numpy as np, pandas as pd, pytest
from interest_llm.data import validate_interactions
from interest_llm.simulate import *

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

# ---------------------------------------------------------------- shared pieces, synthetic logs, two speeds
def test_zipf_weights_and_gaps():
    assert np.allclose(zipf_weights(np.arange(4), 1.0), [1, 1 / 2, 1 / 3, 1 / 4])
    gaps = event_gaps(np.random.default_rng(1), 5)
    assert gaps.dtype == np.int64 and (gaps >= 1).all()
    assert event_gaps(np.random.default_rng(1)) == gaps[0]

def test_synthetic_log_sizes_and_errors():
    s = synthetic_log(5_003, 700, seed=3)
    assert sum(map(len, s.seqs)) == 5_003 and s.n_items == 700 and min(map(len, s.seqs)) >= 3
    assert all((np.diff(t) > 0).all() for t in s.times)
    with pytest.raises(ValueError, match='mean_len'): synthetic_log(100, 10, mean_len=2)
    with pytest.raises(ValueError, match='n_items'): synthetic_log(100, 1)

def test_synthetic_log_is_seeded():
    a, b = synthetic_log(2_000, 100, seed=4), synthetic_log(2_000, 100, seed=4)
    assert all((x == y).all() for x, y in zip(a.seqs, b.seqs)) and a.info == b.info

def test_two_speeds():
    inter, items, truth, speed = simulate_two_speeds(n_users=3, n_items=96, n_topics=6, n_steps=(5, 9), seed=1)
    validate_interactions(inter)
    assert sorted(speed.unique()) == ['fast', 'slow'] and len(truth) == 6 == inter.user.nunique()
    assert all(len(truth[u]) == n for u, n in inter.groupby('user').size().items())
