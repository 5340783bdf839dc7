"""Shared pytest fixtures: where the shared real data lives, the small format fixtures, one torch thread, a small
simulated log, tiny models and a short training configuration."""
import os
from pathlib import Path
import pytest

HERE = Path(__file__).resolve().parent

@pytest.fixture(scope='session')
def data_dir():
    "The shared data directory: $INTEREST_LLM_DATA, else <repo>/../shared/data; skip when absent."
    d = Path(os.environ.get('INTEREST_LLM_DATA') or HERE.parent.parent / 'shared' / 'data').expanduser()
    if not d.is_dir(): pytest.skip(f'shared data directory {d} not found (set INTEREST_LLM_DATA)')
    return d

@pytest.fixture(scope='session')
def fixtures_dir():
    "tests/fixtures (tiny files in formats the shared data lacks)."
    return HERE / 'fixtures'

# ------------------------------------------------------------------------------------------------ shared by several files
@pytest.fixture(scope='module')
def one_thread():
    "One torch thread in this process (as OMP_NUM_THREADS=1 in the subprocesses): small models on a shared 2-core machine."
    import torch
    nt = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(nt)

@pytest.fixture(scope='module')
def sim():
    "A small simulated log: (interactions, items, leave-one-out split without negatives)."
    from interest_llm.data import leave_one_out
    from interest_llm.simulate import simulate_drift
    inter, items, _ = simulate_drift(n_users=40, n_items=48, n_topics=4, n_steps=(6, 14), seed=0)
    return inter, items, leave_one_out(inter, n_negatives=0)

@pytest.fixture(scope='session')
def tiny():
    "Builder of tests/tiny_model.py's `Tiny` (fit's contract): `tiny(split, seed=0, nan_at=None)`."
    import torch
    from tiny_model import Tiny, TinyCfg
    def build(split, seed=0, **kw): torch.manual_seed(seed); return Tiny(TinyCfg(split.n_items), **kw)
    return build

@pytest.fixture(scope='session')
def tcfg():
    "Builder of a short `TrainConfig` with the old library defaults pinned: `tcfg(**overrides)`."
    from interest_llm.train import TrainConfig
    base = dict(epochs=3, batch_size=16, lr=1e-2, max_len=8, patience=10, seed=0, progress=False, scheduler='none',
                precision='fp32')
    return lambda **kw: TrainConfig(**{**base, **kw})

@pytest.fixture(scope='session')
def interest_model():
    "Builder of a small `InterestModel` (16-d random unit text vectors): `interest_model(split, text=True, **cfg)` -> (model, text_emb)."
    import torch
    from interest_llm.model import InterestModel, ModelConfig
    def build(sp, text=True, **kw):
        torch.manual_seed(0)
        emb = torch.nn.functional.normalize(torch.randn(sp.n_items + 1, 16), dim=1) if text else None
        if emb is not None: emb[0] = 0
        cfg = ModelConfig(n_items=sp.n_items, text_dim=16 if text else None, emb_dim=16, hidden_dim=16, latent_dim=8,
                          max_len=8, **kw)
        return InterestModel(cfg, emb, item_ids=sp.item_ids), emb
    return build

@pytest.fixture(scope='module')
def bert_dir(tmp_path_factory):
    "A tiny random BERT with its tokenizer, built offline."
    from interest_llm.llm import make_tiny_model
    return make_tiny_model(tmp_path_factory.mktemp('bert'), 'bert', seed=0)

@pytest.fixture(scope='module')
def gpt_dir(tmp_path_factory):
    "A tiny random GPT-2 with its tokenizer, built offline."
    from interest_llm.llm import make_tiny_model
    return make_tiny_model(tmp_path_factory.mktemp('gpt'), 'gpt2', seed=0)
