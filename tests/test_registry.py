"""Tests of interest_llm.registry: the ModelSpec contract, every entry buildable, the ours family's overrides,
the derived name lists, and BASELINES as a view of MODELS."""
import dataclasses
import numpy as np, pytest, torch
from interest_llm.data import SplitData
from interest_llm.model import InterestModel
from interest_llm.registry import MODELS, BASELINES, ModelSpec, get_model_spec, model_names, run_baseline


@pytest.fixture(scope='module')
def toy():
    seqs = [[1, 2, 4, 4], [1, 2, 3, 3, 4], [2, 3, 4, 4], [1, 2, 1, 4], [2, 3, 2, 4]]
    times = [np.arange(len(s), dtype=np.int64) * 3600 + 1_600_000_000 for s in seqs]
    return SplitData(item_ids=np.array(['<pad>', 'a', 'b', 'c', 'd'], dtype=object),
                     users=np.array([f'u{i}' for i in range(5)], dtype=object),
                     seqs=[np.array(s, dtype=np.int64) for s in seqs], times=times, negatives=None)


def test_contract():
    names = {f.name for f in dataclasses.fields(ModelSpec)}
    assert {'name', 'kind', 'needs_text', 'uses_ids', 'options', 'overrides', 'paper', 'build'} <= names
    for name, spec in MODELS.items():
        assert spec.name == name and spec.kind in ('ours', 'neural', 'deterministic') and callable(spec.build)
        assert spec.paper, name
    with pytest.raises(dataclasses.FrozenInstanceError): MODELS['pop'].kind = 'neural'
    with pytest.raises(ValueError, match='kind must be'): ModelSpec('x', 'other', False, False)


def test_entries_and_derived_lists():
    assert model_names('ours') == ['ours', 'ours-no-llm', 'ours-no-vae', 'ours-no-time', 'ours-no-repeat', 'ours-rnn']
    assert list(BASELINES) == model_names('baseline') == ['pop', 'itemknn', 'content', 'markov', 'gru4rec', 'lstm4rec',
                                                          'sasrec', 'sasrec-pre-ln', 'text_sasrec', 'mlp_article']
    assert model_names('deterministic') == ['pop', 'itemknn', 'content', 'markov']
    assert model_names('baseline', needs_text=True) == ['content', 'text_sasrec']
    assert {n: MODELS[n].overrides for n in model_names('ours')} == {
        'ours': {}, 'ours-no-llm': {'item_repr': 'id'}, 'ours-no-vae': {'use_vae': False},
        'ours-no-time': {'use_time': False}, 'ours-no-repeat': {'repeat': False}, 'ours-rnn': {'cell': 'rnn'}}
    assert not MODELS['ours-no-llm'].needs_text and MODELS['ours'].needs_text
    with pytest.raises(ValueError, match="unknown model 'x'; choose from ours"): get_model_spec('x')


@pytest.mark.parametrize('name', list(MODELS))
def test_every_entry_builds(toy, name):
    text = torch.randn(toy.n_items + 1, 8)
    options = dict(emb_dim=8, hidden_dim=8, latent_dim=4) if MODELS[name].kind == 'ours' else {}
    model = MODELS[name].build(toy, text, 0, **options)
    assert hasattr(model, 'score')
    if MODELS[name].kind == 'ours':
        assert isinstance(model, InterestModel) and model.cfg.neg_seed == 0
        for key, value in MODELS[name].overrides.items(): assert getattr(model.cfg, key) == value
        assert model.cfg.uses_text == MODELS[name].needs_text


def test_seeded_builds_repeat(toy):
    a, b = (MODELS['sasrec'].build(toy, None, seed=5, max_len=10) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    text = torch.randn(toy.n_items + 1, 8)
    o1, o2 = (MODELS['ours'].build(toy, text, seed=2, emb_dim=8, hidden_dim=8, latent_dim=4) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(o1.parameters(), o2.parameters()))


def test_run_baseline_on_toy(toy):
    r = run_baseline('markov', toy)
    assert r['model'] == 'markov' and r['fit'] is None and len(r['per_user']['rank']) == 5
