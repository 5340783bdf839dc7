"""Tests of interest_llm.train: the validated-recipe defaults, determinism, exact resume (also after a killed
process), checkpoint safety (safetensors/JSON only, atomic, config and truncation checks) and the NaN guard."""
import json, math, os, signal, subprocess, sys, textwrap, time, warnings
import numpy as np, pandas as pd, pytest, torch
import torch.nn.functional as F
from torch import nn
from interest_llm.data import leave_one_out, make_loader
from interest_llm.train import TrainConfig, LEGACY_DEFAULTS, fit, epoch_seed
from interest_llm.evaluate import evaluate_model
from interest_llm.checkpoint import load_checkpoint, CheckpointError, save_model, load_model_weights

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

pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py

def cfg(**kw):
    base = dict(LEGACY_DEFAULTS, epochs=4, batch_size=16, lr=1e-2, max_len=10, patience=10, seed=0)
    return TrainConfig(**{**base, **kw})

def new_model(split, seed=0, **kw):
    torch.manual_seed(seed); return Tiny(TinyCfg(split.n_items), **kw)

# ---------- defaults ----------
def test_defaults_are_the_validated_recipe():
    c = TrainConfig()
    assert (c.epochs, c.patience, c.lr, c.batch_size, c.scheduler, c.precision) == (20, 3, 5e-3, 64, 'plateau', 'auto')
    assert (c.weight_decay, c.max_len, c.clip) == (0.01, 50, 1.0)
    old = TrainConfig(**LEGACY_DEFAULTS)
    assert (old.epochs, old.patience, old.lr, old.batch_size, old.scheduler, old.precision) == (30, 5, 1e-3, 128, 'none', 'fp32')

def test_moved_names_still_import():
    import interest_llm.train as train, interest_llm.metrics as metrics, interest_llm.checkpoint as checkpoint
    with pytest.warns(DeprecationWarning, match='moved to interest_llm.metrics'): assert train.target_ranks is metrics.target_ranks
    with pytest.warns(DeprecationWarning, match='moved to interest_llm.checkpoint'): assert train.save_model is checkpoint.save_model
    with pytest.raises(AttributeError): train.no_such_name

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
        fit(m, split, TrainConfig(epochs=6, batch_size=16, lr=1e-2, max_len=10, patience=10, seed=0, scheduler='none',
                                  precision='fp32', checkpoint_dir={str(d)!r}))
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

# ---------- bad input and the NaN guard (tiny models of tests/conftest.py) ----------
def _df(**kw):
    d = dict(user=['u1', 'u1', 'u1', 'u2'], item=['a', 'b', 'c', 'a'], timestamp=np.array([1, 2, 3, 4], dtype=np.int64))
    d.update(kw); return pd.DataFrame(d)

def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(sim, tmp_path, tiny, tcfg):
    _, _, sp = sim; d = str(tmp_path / 'ck')
    steps = len(make_loader(sp, 'train', batch_size=16, max_len=8))
    m = tiny(sp, nan_at=2 * steps + 3)                                         # NaN in the 3rd epoch
    with pytest.warns(UserWarning, match=r'non-finite loss in epoch 3 .*kept the weights of epoch'):
        r = fit(m, sp, tcfg(epochs=5, checkpoint_dir=d))
    assert r.status == 'non-finite' and [h['epoch'] for h in r.history] == [1, 2]
    assert load_checkpoint(d, tiny(sp))['epoch'] == 2
    assert all(torch.isfinite(p).all() for p in m.parameters())

def test_fit_bad_input(sim, tmp_path, tiny, tcfg):
    _, _, sp = sim
    with pytest.raises(ValueError, match=r'lr must be > 0'): tcfg(lr=0)
    with pytest.raises(ValueError, match=r"scheduler must be 'none', 'cosine' or 'plateau'"): tcfg(scheduler='cos')
    with pytest.raises(ValueError, match=r'resume=True needs checkpoint_dir'): fit(tiny(sp), sp, tcfg(resume=True))
    short = leave_one_out(_df(user=['u1', 'u1', 'u2', 'u2']), n_negatives=0)        # nobody has a validation target
    with pytest.raises(ValueError, match=r'split has no valid targets \(every user has < 3 events\)'):
        fit(tiny(short), short, tcfg(epochs=1))
    with pytest.raises(CheckpointError, match=r'no checkpoint in .*last.json missing'): load_checkpoint(str(tmp_path / 'empty'), tiny(sp))
    from interest_llm.distributed import fit_distributed
    single = leave_one_out(_df(user=['u1', 'u2', 'u3', 'u4']), n_negatives=0)      # one event per user: nothing to train on
    with pytest.raises(ValueError, match=r'no training windows: every user has fewer than 2 training events'):
        fit_distributed(tiny(single), single, tcfg(epochs=1))

def test_nan_loss_in_interest_model_stops_training(sim, tmp_path, tcfg, interest_model):
    "An InterestModel whose loss turns NaN at training step k: fit and fit_distributed stop, keep epoch 1's checkpoint."
    pytest.importorskip('interest_llm.model')
    from interest_llm.distributed import fit_distributed
    _, _, sp = sim
    steps = len(make_loader(sp, 'train', batch_size=16, max_len=8))
    for trainer in (fit, fit_distributed):
        m, _ = interest_model(sp); real, n = m.forward, [0]
        def poisoned(b, **kw):
            out = real(b, **kw); n[0] += 1
            if n[0] == steps + 2: out['loss'] = out['loss'] * float('nan')       # 2nd step of epoch 2
            return out
        m.forward = poisoned
        d = str(tmp_path / trainer.__name__)
        with pytest.warns(UserWarning, match=r'non-finite loss in epoch 2 \(loss is nan at step 1\); kept the weights of epoch 1'):
            r = trainer(m, sp, tcfg(epochs=3, checkpoint_dir=d))
        assert r.status == 'non-finite' and r.best_epoch == 1 and load_checkpoint(d, interest_model(sp)[0])['epoch'] == 1
        assert all(torch.isfinite(p).all() for p in m.parameters())
