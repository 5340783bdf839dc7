"""Leakage, smoke and bad-input tests of `interest_llm.baselines` (the lesson-level checks live in nbs/17_baselines.ipynb)."""
import json, math
import numpy as np
import pandas as pd
import pytest
import torch

from interest_llm.data import leave_one_out, make_loader
from interest_llm.simulate import simulate_drift
from interest_llm.train import TrainConfig, LEGACY_DEFAULTS, train_epoch, make_optimizer
from interest_llm.checkpoint import save_model, load_model_weights
from interest_llm.registry import BASELINES, run_baseline
from interest_llm.baselines import (Pop, ItemKNN, TextSimilarity, Markov, RNNRec, SASRec, OrderBlindMLP,
                                    item_counts, transition_counts, user_item_matrix, train_sequences, _training_rows)


def _log(rows):
    return pd.DataFrame(rows, columns=['user', 'item', 'timestamp']).astype({'user': str, 'item': str, 'timestamp': 'int64'})


@pytest.fixture
def leaky():
    "Every user ends with the held-out items 'v' (validation) and 't' (test); they never occur in training."
    rows = []
    for u, hist in enumerate([['a', 'b', 'c'], ['a', 'b'], ['b', 'c', 'a'], ['c', 'a']]):
        for k, it in enumerate(hist + ['v', 't']): rows.append((f'u{u}', it, 100 * k))
    rows.append(('short', 'a', 5))  # a user with < 3 events: training only
    return leave_one_out(_log(rows), n_negatives=0)


@pytest.fixture(scope='module')
def sim():
    inter = simulate_drift(n_users=60, n_items=60, n_topics=4, n_steps=(8, 16), seed=1)[0]
    return leave_one_out(inter, n_negatives=10)


def test_no_leakage_counts(leaky):
    idx = leaky.item_index()
    c = item_counts(leaky)
    assert c[idx['v']] == 0 and c[idx['t']] == 0
    assert c[idx['a']] == 5  # four evaluated users + the short user (whose single event is training)
    T = transition_counts(leaky)
    assert T[:, idx['v']].sum() == 0 and T[:, idx['t']].sum() == 0 and T[idx['v']].sum() == 0
    X = user_item_matrix(leaky)
    assert X[:, idx['v']].sum() == 0 and X[:, idx['t']].sum() == 0
    u, i, h, d = _training_rows(leaky)
    assert not np.isin(i, [idx['v'], idx['t']]).any() and len(i) == sum(len(s) for s in train_sequences(leaky))


def test_fit_ignores_heldout_targets(leaky):
    "Changing every validation/test target must not change anything a count-based baseline learns."
    other = leave_one_out(pd.DataFrame({'user': leaky.users.repeat([len(s) for s in leaky.seqs]),
                                        'item': np.concatenate([leaky.item_ids[s] for s in leaky.seqs]),
                                        'timestamp': np.concatenate(leaky.times)}).assign(
                                            item=lambda d: d.item.replace({'v': 't', 't': 'v'})), n_negatives=0)
    assert (other.item_ids == leaky.item_ids).all()
    for make in (Pop, ItemKNN, Markov):
        a, b = make().fit(leaky), make().fit(other)
        batch = next(iter(make_loader(leaky, 'test', batch_size=8)))
        torch.testing.assert_close(a.score(batch), b.score(batch))


def test_pop_ranks_heldout_item_last(leaky):
    batch = next(iter(make_loader(leaky, 'test', batch_size=8)))
    s = Pop().fit(leaky).score(batch)
    idx = leaky.item_index()
    assert (s[:, idx['t']] < s[:, idx['a']]).all() and torch.isinf(s[:, 0]).all()


def test_score_before_fit_and_bad_input(leaky):
    batch = next(iter(make_loader(leaky, 'test', batch_size=8)))
    for m in (Pop(), ItemKNN(), Markov()):
        with pytest.raises(RuntimeError, match='call fit'): m.score(batch)
    with pytest.raises(ValueError, match='rows'): TextSimilarity(torch.randn(3, 4)).fit(leaky)
    with pytest.raises(ValueError, match='alpha'): Markov(alpha=-1)
    with pytest.raises(ValueError, match='unknown baseline'): run_baseline('nope', leaky)
    with pytest.raises(ValueError, match='text_emb'): run_baseline('content', leaky)
    with pytest.raises(ValueError, match='max_len'): SASRec(5, max_len=3).encode(torch.ones(1, 4, dtype=torch.long), None)
    bad = dict(items=torch.zeros(1, 2, dtype=torch.long), lengths=torch.tensor([0]))
    with pytest.raises(ValueError, match='at least one input item'): Markov().fit(leaky).score(bad)


def _loss_on(model, batch):
    model.eval()
    with torch.no_grad(): return model(batch)['loss'].item()


@pytest.mark.parametrize('name', ['gru4rec', 'lstm4rec', 'sasrec', 'sasrec-pre-ln'])
def test_neural_one_epoch_lowers_loss(sim, name):
    model = BASELINES[name](sim, seed=0, dropout=0.0, **({'max_len': 20} if name.startswith('sasrec') else {}))
    probe = next(iter(make_loader(sim, 'train', batch_size=512, max_len=20, shuffle=False)))
    before = _loss_on(model, probe)
    assert 0.8 * math.log(sim.n_items) < before < 2 * math.log(sim.n_items)  # untrained: about as good as uniform
    cfg = TrainConfig(**{**LEGACY_DEFAULTS, 'batch_size': 16, 'lr': 1e-2, 'max_len': 20})
    train_epoch(model, make_loader(sim, 'train', batch_size=16, max_len=20, seed=0), make_optimizer(model, cfg), cfg)
    assert _loss_on(model, probe) < before - 0.02
    s = model.score(next(iter(make_loader(sim, 'valid', batch_size=7, max_len=20))))
    assert s.shape == (7, sim.n_items + 1) and torch.isinf(s[:, 0]).all() and torch.isfinite(s[:, 1:]).all()


def test_mlp_one_epoch_lowers_loss(sim):
    torch.manual_seed(0); model = OrderBlindMLP(sim, dropout=0.0)
    rng = np.random.default_rng(0)
    model._rows = _training_rows(sim)
    probe = next(model.batches(sim, 10_000, np.random.default_rng(1)))
    before = _loss_on(model, probe); model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for b in model.batches(sim, 16, rng):
        loss = model(b)['loss']; opt.zero_grad(); loss.backward(); opt.step()
    assert _loss_on(model, probe) < before - 0.05


@pytest.mark.parametrize('name', list(BASELINES))
def test_run_baseline_end_to_end(sim, name):
    emb = torch.randn(sim.n_items + 1, 8) if name in ('content', 'text_sasrec') else None
    r = run_baseline(name, sim, text_emb=emb, seed=0, masked=True,
                     train_cfg=TrainConfig(**{**LEGACY_DEFAULTS, 'epochs': 1, 'batch_size': 32, 'max_len': 20, 'patience': 1}))
    n_eval = len(sim.eval_users())
    assert len(r['per_user']['rank']) == n_eval and (r['per_user']['rank'] >= 1).all()
    assert np.isclose(r['per_user']['ndcg@10'].mean(), r['test']['ndcg@10'])
    for stage in ('valid', 'test', 'test_masked'):
        assert 0 <= r[stage]['ndcg@10'] <= r[stage]['hr@10'] <= r[stage]['hr@20'] <= 1
    assert r['test_masked']['hr@20'] >= r['test']['hr@20'] - 1e-12  # removing seen items never lowers a target's rank
    assert r['timing']['eval_s'] > 0
    json.dumps({k: r[k] for k in ('valid', 'test', 'timing', 'fit', 'protocol', 'model', 'seed')})
    if name in ('gru4rec', 'lstm4rec', 'sasrec', 'sasrec-pre-ln', 'text_sasrec', 'mlp_article'): assert r['fit']['epochs'] == 1


def test_run_baseline_is_reproducible(sim):
    cfg = TrainConfig(**{**LEGACY_DEFAULTS, 'epochs': 1, 'batch_size': 32, 'max_len': 20})
    a, b = (run_baseline('gru4rec', sim, seed=3, train_cfg=cfg) for _ in range(2))
    assert a['test'] == b['test']


def test_sasrec_checkpoint_roundtrip(sim, tmp_path):
    m = SASRec(sim.n_items, dim=16, max_len=20)
    save_model(m, str(tmp_path))
    m2 = SASRec(sim.n_items, dim=16, max_len=20); load_model_weights(m2, str(tmp_path))
    batch = next(iter(make_loader(sim, 'test', batch_size=4, max_len=20)))
    m.eval(); m2.eval()
    torch.testing.assert_close(m.score(batch), m2.score(batch))
    with pytest.raises(Exception, match='different model configuration|does not match'):
        load_model_weights(SASRec(sim.n_items, dim=16, max_len=30), str(tmp_path))


def test_mlp_refuses_sequence_batches(sim):
    "train.fit feeds sequence windows; the MLP must say how it is trained instead of failing with a KeyError."
    model = OrderBlindMLP(sim)
    with pytest.raises(ValueError, match='model.fit'):
        model(next(iter(make_loader(sim, 'train', batch_size=4, max_len=20))))


def test_old_names_warn_and_work():
    import interest_llm.baselines as baselines, interest_llm.registry as registry
    with pytest.warns(DeprecationWarning, match='now TextSimilarity'): assert baselines.Content is TextSimilarity
    with pytest.warns(DeprecationWarning, match='now OrderBlindMLP'): assert baselines.MLPArticle is OrderBlindMLP
    with pytest.warns(DeprecationWarning, match='moved to interest_llm.registry'):
        assert baselines.BASELINES is registry.BASELINES


def test_neural_baselines_honour_the_loss_precision(sim):
    "train_epoch sets SeqRecBase.precision from TrainConfig.precision for the epoch, then restores it."
    model = BASELINES['gru4rec'](sim, seed=0, dropout=0.0)
    assert model.precision == 'fp32'
    seen = []
    forward = type(model).forward
    def spy(self, batch, **kw):
        seen.append(self.precision)
        return forward(self, batch, **kw)
    model.forward = spy.__get__(model)
    cfg = TrainConfig(**{**LEGACY_DEFAULTS, 'batch_size': 32, 'max_len': 20, 'precision': 'bf16'})
    loader = make_loader(sim, 'train', batch_size=32, max_len=20, shuffle=False)
    train_epoch(model, loader, make_optimizer(model, cfg), cfg)
    assert set(seen) == {'bf16'} and model.precision == 'fp32'
