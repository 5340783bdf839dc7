"""Property-based tests of the chronological leave-one-out splitter and the PyTorch loaders.

For random interaction logs (random users, items and timestamps with many ties) `data.leave_one_out` and
`data.make_loader` must
* lose and duplicate no event: the multiset of (user, item, timestamp) is the same in the log and in
  train + validation + test;
* keep time order: within a user, timestamps never decrease, so the test target is the latest event, the
  validation target the one before;
* never show a validation or test event to training: every training window is a contiguous piece of
  `seq[:-2]` (inputs and targets), every position of `seq[:-2]` after the first is a target exactly once;
* never show the target (or anything after it) in an evaluation input: the valid input is the end of
  `seq[:-2]`, the test input the end of `seq[:-1]`.
Run: `pytest tests/test_splitter_property.py -q` (about 10 s).
"""
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from interest_llm.data import leave_one_out, make_loader, SeqDataset

EVENTS = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7), st.integers(0, 6)), min_size=1, max_size=60)
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

def _log(events):
    "Interaction table from (user, item, time) integer triples; few distinct times, so many ties."
    return pd.DataFrame({'user': [f'u{u}' for u, _, _ in events], 'item': [f'i{i}' for _, i, _ in events],
                         'timestamp': np.array([1_600_000_000 + 3600 * t for _, _, t in events], dtype=np.int64)})

def _events(sp, u, lo=0, hi=None):
    "(user, item, timestamp) triples of positions lo:hi of user u's sequence."
    return [(str(sp.users[u]), str(sp.item_ids[i]), int(t)) for i, t in zip(sp.seqs[u][lo:hi], sp.times[u][lo:hi])]

@SETTINGS
@given(EVENTS)
def test_no_event_lost_or_duplicated(events):
    df = _log(events); sp = leave_one_out(df, n_negatives=0)
    train, valid, test = Counter(), Counter(), Counter()
    for u in range(sp.n_users):
        n = len(sp.seqs[u])
        assert len(sp.times[u]) == n and n >= 1
        assert np.all(np.diff(sp.times[u]) >= 0), "events of a user are not in time order"
        if n >= 3:
            train.update(_events(sp, u, 0, n - 2)); valid.update(_events(sp, u, n - 2, n - 1)); test.update(_events(sp, u, n - 1))
            assert sp.times[u][-1] == sp.times[u].max() and sp.times[u][-2] == np.sort(sp.times[u])[-2]
        else: train.update(_events(sp, u))
    original = Counter(zip(df.user, df.item, df.timestamp.astype(int)))
    assert train + valid + test == original
    assert sum(valid.values()) == sum(test.values()) == len(sp.eval_users())
    assert sp.info['n_events'] == len(df)

def _is_piece(window, seq):
    "True when `window` occurs as a contiguous piece of `seq`."
    w, n = len(window), len(seq)
    return any(np.array_equal(seq[s:s + w], window) for s in range(n - w + 1))

@SETTINGS
@given(EVENTS, st.integers(1, 6), st.integers(1, 5))
def test_training_windows_never_see_valid_or_test(events, max_len, batch_size):
    sp = leave_one_out(_log(events), n_negatives=0)
    ds = SeqDataset(sp, max_len, 'train')
    rows = iter(ds.rows)  # shuffle=False: batch rows come in dataset order; only the user index is taken from it
    n_targets = Counter()
    for b in make_loader(sp, 'train', batch_size=batch_size, max_len=max_len, shuffle=False):
        assert set(b) >= {'items', 'targets', 'gaps', 'lengths'}
        for j in range(len(b['items'])):
            u = next(rows)[0]; L = int(b['lengths'][j]); train = sp.seqs[u][:-2] if len(sp.seqs[u]) >= 3 else sp.seqs[u]
            x, y = b['items'][j].numpy(), b['targets'][j].numpy()
            assert 1 <= L <= max_len and (x[L:] == 0).all() and (y[L:] == 0).all() and (x[:L] > 0).all() and (y[:L] > 0).all()
            assert np.array_equal(x[1:L], y[:L - 1]), "targets are not the next inputs"
            piece = np.append(x[:L], y[L - 1])          # inputs + last target: must be a contiguous piece of seq[:-2]
            assert _is_piece(piece, train), f"training window {piece} is not a piece of the training sequence {train}"
            n_targets[u] += L
    assert next(rows, None) is None
    for u in range(sp.n_users):   # every training position after the first is a target exactly once (no overlap, no loss)
        n = len(sp.seqs[u][:-2] if len(sp.seqs[u]) >= 3 else sp.seqs[u])
        assert n_targets[u] == max(n - 1, 0)

@SETTINGS
@given(EVENTS, st.integers(1, 6), st.sampled_from(['valid', 'test']))
def test_eval_inputs_exclude_target_and_later(events, max_len, stage):
    sp = leave_one_out(_log(events), n_negatives=0)
    seen = []
    for b in make_loader(sp, stage, batch_size=3, max_len=max_len):
        for j in range(len(b['items'])):
            u = int(b['user'][j]); s, t = sp.seqs[u], sp.times[u]; cut = len(s) - (2 if stage == 'valid' else 1)
            L = int(b['lengths'][j]); x = b['items'][j, :L].numpy()
            assert len(s) >= 3 and int(b['target'][j]) == s[cut]
            assert np.array_equal(x, s[:cut][-max_len:]), f"{stage} input is not the end of the history before the target"
            assert L == min(cut, max_len) and (b['items'][j, L:] == 0).all()
            assert t[:cut].max() <= t[cut], "an input event is later than the target"
            seen.append(u)
    assert sorted(seen) == sorted(sp.eval_users().tolist())
