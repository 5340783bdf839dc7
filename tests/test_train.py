"""Tests of interest_llm.train: metrics on hand-computed cases, determinism, exact resume (also after a killed
process), checkpoint safety (safetensors/JSON only, atomic, config and truncation checks) and the NaN guard."""
import json, math, os, signal, subprocess, sys, textwrap, time, warnings
import numpy as np, pandas as pd, pytest, torch
import torch.nn.functional as F
from torch import nn
from interest_llm.data import leave_one_out, make_loader
from interest_llm.train import (TrainConfig, fit, ranking_metrics, target_ranks, evaluate_model, load_checkpoint,
                                CheckpointError, save_model, load_model_weights, epoch_seed)

MODEL_SRC = '''
import torch, torch.nn.functional as F
from torch import nn
from dataclasses import dataclass
@dataclass
class TinyCfg:
    n_items: int
    dim: int = 16
    dropout: float = 0.2
class Tiny(nn.Module):
    "Embedding + GRU following the fit contract."
    def __init__(self, cfg, nan_after=None):
        super().__init__(); self.cfg = cfg
        self.emb = nn.Embedding(cfg.n_items + 1, cfg.dim, padding_idx=0)
        self.gru, self.drop = nn.GRU(cfg.dim, cfg.dim, batch_first=True), nn.Dropout(cfg.dropout)
        self.nan_after, self.steps = nan_after, 0
    def enc(self, x): return self.gru(self.drop(self.emb(x)))[0]
    def forward(self, b):
        logits = self.enc(b['items']) @ self.emb.weight.T
        ce = F.cross_entropy(logits.flatten(0, 1), b['targets'].flatten(), ignore_index=0)
        self.steps += 1
        if self.nan_after is not None and self.steps > self.nan_after: ce = ce + float('inf')
        return dict(logits=logits, loss=ce + 0.01 * self.emb.weight.pow(2).mean(), ce=ce)
    def score(self, b):
        h = self.enc(b['items'])[torch.arange(len(b['items'])), b['lengths'] - 1]
        s = h @ self.emb.weight.T; s[:, 0] = -float('inf'); return s
def toy_df(n_users=60, n_items=25, seed=0):
    import numpy as np, pandas as pd
    rng, rows = np.random.default_rng(seed), []
    for u in range(n_users):
        it = int(rng.integers(n_items))
        for t in range(int(rng.integers(5, 20))):
            rows.append((f'u{u}', f'i{it}', 1_000_000 + 60 * t))
            it = (it + 1) % n_items if rng.random() < .7 else int(rng.integers(n_items))
    return pd.DataFrame(rows, columns=['user', 'item', 'timestamp'])
'''
ns = {}; exec(MODEL_SRC, ns)
Tiny, TinyCfg, toy_df = ns['Tiny'], ns['TinyCfg'], ns['toy_df']

@pytest.fixture(scope='module')
def split(): return leave_one_out(toy_df(), n_negatives=3, seed=0)

def cfg(**kw):
    base = dict(epochs=4, batch_size=16, lr=1e-2, max_len=10, patience=10, seed=0)
    return TrainConfig(**{**base, **kw})

def new_model(split, seed=0, **kw):
    torch.manual_seed(seed); return Tiny(TinyCfg(split.n_items), **kw)

# ---------- metrics ----------
def test_ranks_hand_computed_with_ties():
    s = torch.tensor([[50., .9, .5, .5, .1]] * 4)
    assert target_ranks(s, torch.tensor([1, 2, 3, 4])).tolist() == [1, 3, 3, 4]   # pessimistic ties, padding ignored
    assert target_ranks(s, torch.tensor([2, 2, 2, 2]), torch.tensor([[3, 0], [0, 0], [1, 3], [2, 0]])).tolist() == [2, 3, 1, 3]
    m = ranking_metrics(s[:3], torch.tensor([1, 2, 4]), ks=(1, 3))
    assert m['hr@1'] == pytest.approx(1 / 3) and m['hr@3'] == pytest.approx(2 / 3)
    assert m['ndcg@3'] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert m['mrr@3'] == pytest.approx((1 + 1 / 3) / 3)

def test_constant_scores_rank_last():
    assert target_ranks(torch.zeros(1, 11), torch.tensor([5])).item() == 10

def test_bad_targets_and_nan():
    with pytest.raises(ValueError, match='0 is padding'): target_ranks(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='NaN'): target_ranks(torch.tensor([[0., float('nan')]]), torch.tensor([1]))

# ---------- training ----------
def test_fit_learns_and_restores_best(split):
    m = new_model(split)
    before = evaluate_model(m, split, 'valid', max_len=10)['ndcg@10']
    r = fit(m, split, cfg(epochs=8))
    assert r.best_valid['ndcg@10'] > before + 0.1
    assert evaluate_model(m, split, 'valid', max_len=10)['ndcg@10'] == pytest.approx(r.best_valid['ndcg@10'], abs=1e-12)
    assert set(r.history[0]['train']) == {'loss', 'ce'} and r.s_per_epoch > 0 and r.time_to_best > 0

def test_every_position_is_a_target_once(split):
    n_targets = sum(int((b['targets'] > 0).sum()) for b in make_loader(split, 'train', batch_size=16, max_len=10))
    assert n_targets == sum(max(len(split.train_seq(u)) - 1, 0) for u in range(split.n_users))

def test_same_seed_same_metrics(split):
    a = fit(new_model(split), split, cfg(epochs=3)); b = fit(new_model(split), split, cfg(epochs=3))
    assert [h['valid'] for h in a.history] == [h['valid'] for h in b.history]
    assert [h['train'] for h in a.history] == [h['train'] for h in b.history]
    c = fit(new_model(split), split, cfg(epochs=3, seed=1))
    assert [h['train'] for h in a.history] != [h['train'] for h in c.history]

def test_early_stopping(split):
    r = fit(new_model(split), split, cfg(epochs=30, patience=2, lr=0.05))
    assert r.stop_reason == 'early stopping'
    assert len(r.history) == r.best_epoch + 2

def test_resume_matches_uninterrupted(split, tmp_path):
    ref_model = new_model(split); ref = fit(ref_model, split, cfg(epochs=5, scheduler='cosine'))
    d = str(tmp_path / 'ck')
    n_batches = len(make_loader(split, 'train', batch_size=16, max_len=10))
    crashing = new_model(split)
    orig = crashing.forward
    def crash(b):                                                            # a crash in the middle of epoch 3
        if crashing.steps == 2 * n_batches + 3: raise KeyboardInterrupt
        return orig(b)
    crashing.forward = crash
    with pytest.raises(KeyboardInterrupt): fit(crashing, split, cfg(epochs=5, scheduler='cosine', checkpoint_dir=d))
    assert json.load(open(os.path.join(d, 'last.json')))['epoch'] == 2
    m = new_model(split, seed=99)                                           # different init: must be overwritten
    res = fit(m, split, cfg(epochs=5, scheduler='cosine', checkpoint_dir=d, resume=True))
    assert [h['valid'] for h in res.history] == [h['valid'] for h in ref.history]
    assert [h['train'] for h in res.history] == [h['train'] for h in ref.history]
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), ref_model.state_dict().values()))

def test_resume_can_extend_epochs_without_schedule(split, tmp_path):
    ref = fit(new_model(split), split, cfg(epochs=4))
    d = str(tmp_path / 'ck')
    fit(new_model(split), split, cfg(epochs=2, checkpoint_dir=d))
    res = fit(new_model(split), split, cfg(epochs=4, checkpoint_dir=d, resume=True))
    assert [h['valid'] for h in res.history] == [h['valid'] for h in ref.history]
    fit(new_model(split), split, cfg(epochs=2, scheduler='cosine', checkpoint_dir=str(tmp_path / 'c2')))
    with pytest.raises(CheckpointError, match='epochs=2'):             # a cosine schedule depends on epochs
        fit(new_model(split), split, cfg(epochs=4, scheduler='cosine', checkpoint_dir=str(tmp_path / 'c2'), resume=True))

def test_checkpoint_files_safe_and_atomic(split, tmp_path):
    d = tmp_path / 'ck'
    fit(new_model(split), split, cfg(epochs=3, checkpoint_dir=str(d)))
    files = sorted(os.listdir(d))
    assert all(f.endswith(('.safetensors', '.json')) for f in files), files      # no pickles, no leftover .tmp
    meta = json.load(open(d / 'last.json'))
    assert meta['epoch'] == 3 and meta['model_config'] == {'n_items': split.n_items, 'dim': 16, 'dropout': 0.2}
    assert {'history', 'train_config', 'optimizer', 'rng', 'best_metric'} <= set(meta)
    assert files.count(meta['file']) == 1

def test_resume_refuses_other_config_and_truncated(split, tmp_path):
    d = str(tmp_path / 'ck')
    fit(new_model(split), split, cfg(epochs=2, checkpoint_dir=d))
    with pytest.raises(CheckpointError, match='different training configuration: batch_size=16'):
        fit(new_model(split), split, cfg(epochs=4, batch_size=8, checkpoint_dir=d, resume=True))
    with pytest.raises(CheckpointError, match='different model configuration: dim=16'):
        torch.manual_seed(0); fit(Tiny(TinyCfg(split.n_items, dim=8)), split, cfg(epochs=4, checkpoint_dir=d, resume=True))
    f = os.path.join(d, json.load(open(os.path.join(d, 'last.json')))['file'])
    with open(f, 'r+b') as fh: fh.truncate(os.path.getsize(f) - 100)
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        fit(new_model(split), split, cfg(epochs=4, checkpoint_dir=d, resume=True))
    with open(os.path.join(d, 'last.json'), 'r+') as fh: fh.truncate(50)
    with pytest.raises(CheckpointError, match='truncated or corrupt'):
        load_checkpoint(d, new_model(split))

def test_nan_loss_stops_and_keeps_good_checkpoint(split, tmp_path):
    d = str(tmp_path / 'ck')
    n_batches = len(make_loader(split, 'train', batch_size=16, max_len=10))
    m = new_model(split, nan_after=2 * n_batches + 1)
    with pytest.warns(UserWarning, match='non-finite loss'):
        r = fit(m, split, cfg(epochs=5, checkpoint_dir=d))
    assert r.status == 'non-finite' and len(r.history) == 2
    assert json.load(open(os.path.join(d, 'last.json')))['epoch'] == 2
    assert all(torch.isfinite(p).all() for p in m.parameters())

def test_save_and_load_model(split, tmp_path):
    m = new_model(split); save_model(m, str(tmp_path / 'run'), dict(note='x'))
    m2 = new_model(split, seed=5); info = load_model_weights(m2, str(tmp_path / 'run'))
    assert info['note'] == 'x' and torch.equal(m.emb.weight, m2.emb.weight)
    with pytest.raises(CheckpointError, match='different model configuration'):
        load_model_weights(Tiny(TinyCfg(split.n_items, dim=8)), str(tmp_path / 'run'))

def test_resume_after_killed_process(split, tmp_path):
    "Kill a training process (SIGKILL) after its 2nd checkpoint; resuming reaches the uninterrupted metrics."
    d = tmp_path / 'ck'
    script = tmp_path / 'run.py'
    script.write_text(MODEL_SRC + textwrap.dedent(f'''
        import sys, time, torch
        torch.set_num_threads(1)
        from interest_llm.data import leave_one_out
        from interest_llm.train import fit, TrainConfig
        split = leave_one_out(toy_df(), n_negatives=3, seed=0)
        torch.manual_seed(0); m = Tiny(TinyCfg(split.n_items))
        orig = m.forward
        def slow(b): time.sleep(0.05); return orig(b)
        m.forward = slow
        fit(m, split, TrainConfig(epochs=6, batch_size=16, lr=1e-2, max_len=10, patience=10, seed=0, checkpoint_dir={str(d)!r}))
    '''))
    p = subprocess.Popen([sys.executable, str(script)], env={**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)})
    try:
        t0 = time.time()
        while time.time() - t0 < 120:
            if (d / 'last.json').exists() and json.load(open(d / 'last.json'))['epoch'] >= 2: break
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL); p.wait()
    finally:
        if p.poll() is None: p.kill()
    done = json.load(open(d / 'last.json'))['epoch']
    assert 2 <= done < 6
    nt = torch.get_num_threads(); torch.set_num_threads(1)
    try:
        res = fit(new_model(split), split, cfg(epochs=6, checkpoint_dir=str(d), resume=True))
        ref = fit(new_model(split), split, cfg(epochs=6))
    finally: torch.set_num_threads(nt)
    assert [h['valid'] for h in res.history] == [h['valid'] for h in ref.history]
