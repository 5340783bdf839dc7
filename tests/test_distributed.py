"""Multi-process tests of interest_llm.distributed (issue 6), with 2 real CPU processes (gloo) started by
`python -m torch.distributed.run --nproc_per_node=2` on 127.0.0.1, OMP_NUM_THREADS=1 per process.

What is checked
* 2 processes with per-rank batch 8 train the same model as 1 process (`train.fit`) with batch 16: same training
  losses, same validation metrics, same final weights. Tolerance: DDP averages the ranks' gradients; with the
  target-count weighting of `GlobalMeanLoss` that average equals the single-process gradient of the union batch,
  so the runs differ only by floating-point summation order (observed ~1e-7 relative on the losses); we allow
  rtol 1e-5 on losses, 1e-4 absolute on weights after several Adam steps, and exact equality of the rank-based
  validation metrics up to 1e-9 (a tie flip would show as a large jump).
* checkpoints resume across world sizes: 2 -> 1 (train.fit resumes a checkpoint written by 2 processes) and
  1 -> 2 (`torchrun ... -m interest_llm.distributed --resume`, the real InterestModel with MiniLM text vectors,
  resumes a checkpoint written by a single process), reaching the uninterrupted single-process result.
* item-text embedding sharded over 2 ranks equals single-process `llm.embed_catalogue` on every rank.
* a NaN loss on one rank only stops both ranks at the same step (no hang), keeping the last good checkpoint.
The model is deterministic (no dropout) so that the comparisons are exact up to rounding.
Run: `pytest tests/test_distributed.py -q` (about 40 s on 2 cores).
"""
import json, os, subprocess, sys, textwrap
from pathlib import Path
import numpy as np, pytest, torch
from safetensors.torch import load_file

from interest_llm.data import leave_one_out
from interest_llm.simulate import simulate_drift
from interest_llm.checkpoint import load_checkpoint
from interest_llm.train import TrainConfig, fit

REPO = Path(__file__).resolve().parents[1]

WORKER = '''
import json, os, sys, torch
from safetensors.torch import save_file
from interest_llm.data import leave_one_out
from interest_llm.simulate import simulate_drift
from interest_llm.train import TrainConfig, fit
from interest_llm.distributed import init_distributed, fit_distributed, embed_catalogue_sharded, shutdown

from tiny_model import Tiny, TinyCfg        # tests/tiny_model.py (this folder is on the workers' PYTHONPATH)
DIM = 16

def data():
    inter, items, _ = simulate_drift(n_users=60, n_items=64, n_topics=4, n_steps=(6, 20), seed=0)
    return leave_one_out(inter, n_negatives=0), items

def cfg(**kw):
    return TrainConfig(**{**dict(epochs=4, batch_size=16, lr=5e-3, max_len=8, patience=10, seed=0, progress=False,
                              scheduler='none', precision='fp32'), **kw})

if __name__ == '__main__':
    a = json.loads(sys.argv[1]); out = a['out']
    info = init_distributed()
    split, items = data()
    if a.get('tiny_lm'):
        from interest_llm.llm import TextEncoder
        E = embed_catalogue_sharded(split, items, info, encoder=TextEncoder(a['tiny_lm']), use_cache=False)
        save_file({'E': E}, os.path.join(out, f'emb-rank{info.rank}.safetensors'))
    torch.manual_seed(0)
    nan_at = a.get('nan_at') if info.rank == a.get('nan_rank') else None
    m = Tiny(TinyCfg(split.n_items, DIM), nan_at=nan_at)
    r = fit_distributed(m, split, cfg(batch_size=a['batch'], epochs=a['epochs'], checkpoint_dir=a.get('ckpt'), resume=a.get('resume', False)), info)
    res = dict(rank=info.rank, world=info.world_size, history=r.history, status=r.status, stop=r.stop_reason)
    json.dump(res, open(os.path.join(out, f'result-rank{info.rank}.json'), 'w'))
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, os.path.join(out, f'weights-rank{info.rank}.safetensors'))
    shutdown(info)
'''

ns = {'__name__': 'worker'}; exec(WORKER, ns)
DIM, make_data, make_cfg = ns['DIM'], ns['data'], ns['cfg']
from tiny_model import Tiny, TinyCfg

def torchrun(tmp_path, nproc=2, timeout=120, **args):
    "Run the worker under `torchrun --standalone` (it binds a free local port itself: no pick-then-bind race); returns the per-rank results."
    script = tmp_path / 'worker.py'; script.write_text(WORKER)
    out = tmp_path / f'out-{len(list(tmp_path.glob("out-*")))}'; out.mkdir()
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join([str(REPO), str(REPO / 'tests'), *sys.path])}
    cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', '--nnodes=1',
           '--standalone', str(script), json.dumps(dict(args, out=str(out)))]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr[-3000:]
    return [json.load(open(out / f'result-rank{r}.json')) for r in range(nproc)], out

pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py

@pytest.fixture(scope='module')
def split(): return make_data()[0]

@pytest.fixture(scope='module')
def reference(split):
    "Uninterrupted single-process run, batch 16 (= 2 ranks x 8), 4 epochs."
    nt = torch.get_num_threads(); torch.set_num_threads(1)
    try: torch.manual_seed(0); m = Tiny(TinyCfg(split.n_items, DIM)); r = fit(m, split, make_cfg(epochs=4))
    finally: torch.set_num_threads(nt)
    return r, m.state_dict()

def assert_same_run(hist, ref_hist):
    assert [h['epoch'] for h in hist] == [h['epoch'] for h in ref_hist]
    for h, g in zip(hist, ref_hist):
        np.testing.assert_allclose(h['train']['ce'], g['train']['ce'], rtol=1e-5)
        for k in g['valid']: assert abs(h['valid'][k] - g['valid'][k]) < 1e-9, (h['epoch'], k, h['valid'][k], g['valid'][k])

def assert_same_weights(path, ref_sd, atol=1e-4):
    w = load_file(str(path))
    for k, v in ref_sd.items(): torch.testing.assert_close(w[k], v, atol=atol, rtol=0)

def test_two_processes_equal_one_and_resume_2_to_1(tmp_path, split, reference):
    from interest_llm.llm import make_tiny_model, TextEncoder, embed_catalogue
    lm = make_tiny_model(tmp_path / 'lm')
    ck = tmp_path / 'ck2'
    res, out = torchrun(tmp_path, batch=8, epochs=2, ckpt=str(ck), tiny_lm=lm)
    ref, ref_sd = reference
    # the same history on both ranks, equal to the first 2 epochs of the single-process run with batch 16
    assert res[0]['history'] == res[1]['history'] and res[0]['world'] == 2
    assert_same_run(res[0]['history'], ref.history[:2])
    # sharded embedding: identical on both ranks and equal to the single-process embedding
    E0, E1 = (load_file(str(out / f'emb-rank{r}.safetensors'))['E'] for r in (0, 1))
    assert torch.equal(E0, E1)
    E = embed_catalogue(split, make_data()[1], encoder=TextEncoder(lm), use_cache=False)
    torch.testing.assert_close(E0, E, atol=1e-5, rtol=1e-4)
    # only rank 0 wrote the checkpoint; it records the effective batch (16) -> a single process resumes it
    meta = json.load(open(ck / 'last.json'))
    assert meta['epoch'] == 2 and meta['train_config']['batch_size'] == 16
    torch.manual_seed(0); m = Tiny(TinyCfg(split.n_items, DIM))
    nt = torch.get_num_threads(); torch.set_num_threads(1)
    try: r = fit(m, split, make_cfg(epochs=4, checkpoint_dir=str(ck), resume=True))
    finally: torch.set_num_threads(nt)
    assert_same_run(r.history, ref.history)
    for k, v in ref_sd.items(): torch.testing.assert_close(m.state_dict()[k], v, atol=1e-4, rtol=0)

CLI = ['--data', 'simulate', '--sim-users', '60', '--sim-items', '64', '--sim-steps', '6,20', '--max-len', '8',
       '--n-negatives', '0', '--patience', '10', '--lr', '5e-3', '--seed', '0', '--scheduler', 'none', '--precision', 'fp32',
       '--set', 'dropout=0', '--set', 'adapter_dropout=0', '--set', 'use_vae=false', '--set', 'hidden_dim=16', '--set', 'emb_dim=16']

def test_cli_resume_1_to_2_with_interest_model(tmp_path):
    """The real entry point and model (MiniLM text vectors + ids, LSTM): 2 epochs in 1 process (batch 16), resumed by
    `torchrun --nproc_per_node=2 -m interest_llm.distributed` (batch 8 per rank) to 4 epochs = 4 epochs in 1 process."""
    from interest_llm.distributed import main
    cache, ck = ['--embed-cache', str(tmp_path / 'cache')], tmp_path / 'ck'
    nt = torch.get_num_threads(); torch.set_num_threads(1)
    try:
        ref = main(CLI + cache + ['--epochs', '4', '--batch-size', '16', '--out', str(tmp_path / 'ref')])
        main(CLI + cache + ['--epochs', '2', '--batch-size', '16', '--checkpoint-dir', str(ck)])
    finally: torch.set_num_threads(nt)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join([str(REPO), str(REPO / 'tests'), *sys.path])}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--standalone',
           '-m', 'interest_llm.distributed', *CLI, *cache, '--epochs', '4', '--batch-size', '8', '--checkpoint-dir', str(ck),
           '--resume', '--out', str(tmp_path / 'two')]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    two = json.load(open(tmp_path / 'two' / 'metrics.json'))
    assert two['distributed'] == {**two['distributed'], 'world_size': 2, 'per_rank_batch': 8, 'effective_batch': 16, 'backend': 'gloo'}
    assert_same_run(two['history'], ref['history'])
    for k, v in ref['test'].items(): assert abs(two['test'][k] - v) < 1e-9, (k, two['test'][k], v)
    # rank 0 wrote the run folder: the same weights as the single-process run, within rounding
    wa, wb = load_file(str(tmp_path / 'two' / 'model.safetensors')), load_file(str(tmp_path / 'ref' / 'model.safetensors'))
    assert wa.keys() == wb.keys()
    for k in wa: torch.testing.assert_close(wa[k], wb[k], atol=1e-4, rtol=0)

def test_nan_on_one_rank_stops_all_ranks(tmp_path, split):
    ck = tmp_path / 'ck'
    steps_per_epoch = -(-len(__import__('interest_llm.data', fromlist=['SeqDataset']).SeqDataset(split, 8, 'train')) // 16)
    res, _ = torchrun(tmp_path, batch=8, epochs=4, ckpt=str(ck), nan_rank=1, nan_at=steps_per_epoch + 2)   # in epoch 2, rank 1 only
    for r in res:
        assert r['status'] == 'non-finite' and 'non-finite loss in epoch 2' in r['stop']
        assert [h['epoch'] for h in r['history']] == [1]
    assert load_checkpoint(str(ck), Tiny(TinyCfg(split.n_items, DIM)))['epoch'] == 1

# ------------------------------------------------------------------------------------------------ interruption, determinism and bad input of the entry point
import re, signal, time
from interest_llm.checkpoint import CheckpointError

def _cli_args(ck, out, epochs=4):
    return ['--data', 'simulate', '--sim-users', '80', '--sim-items', '64', '--sim-steps', '10,30', '--epochs', str(epochs),
            '--batch-size', '8', '--max-len', '12', '--n-negatives', '0', '--patience', '10', '--seed', '3',
            '--item-repr', 'id', '--set', 'dropout=0.2', '--checkpoint-dir', str(ck), '--out', str(out)]

def _env():
    return {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join([str(REPO), *sys.path])}

def _in_process(argv):
    from interest_llm.distributed import main
    nt = torch.get_num_threads(); torch.set_num_threads(1)
    try: return main(argv)
    finally: torch.set_num_threads(nt)

def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    "`python -m interest_llm.distributed` killed with SIGKILL during epoch 2 resumes to the uninterrupted result."
    pytest.importorskip('interest_llm.model')
    ck, out = tmp_path / 'ck', tmp_path / 'out'
    p = subprocess.Popen([sys.executable, '-m', 'interest_llm.distributed', *_cli_args(ck, out)], env=_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        t0 = time.time()
        while time.time() - t0 < 120 and p.poll() is None and not (ck / 'last.json').exists(): time.sleep(0.02)
        assert p.poll() is None, f'training ended before it could be killed: {p.stderr.read().decode()[-2000:]}'
        os.kill(p.pid, signal.SIGKILL); p.wait(timeout=30)
    finally:
        if p.poll() is None: os.kill(p.pid, signal.SIGKILL)
    done = json.load(open(ck / 'last.json'))['epoch']
    assert p.returncode == -signal.SIGKILL and 1 <= done < 4 and not (out / 'metrics.json').exists()
    r = subprocess.run([sys.executable, '-m', 'interest_llm.distributed', *_cli_args(ck, out), '--resume'], env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    resumed = json.load(open(out / 'metrics.json'))
    ref = _in_process(_cli_args(tmp_path / 'ck-ref', tmp_path / 'out-ref'))
    assert [h['valid'] for h in resumed['history']] == [h['valid'] for h in ref['history']]
    assert resumed['test'] == ref['test'] and resumed['best_epoch'] == ref['best_epoch']

def test_same_seed_same_metrics_run_after_run(tmp_path):
    "Determinism on CPU: the full pipeline (data, model with dropout and VAE sampling, training) twice -> identical."
    pytest.importorskip('interest_llm.model')
    a = _in_process(_cli_args(tmp_path / 'c1', tmp_path / 'o1', epochs=2))
    b = _in_process(_cli_args(tmp_path / 'c2', tmp_path / 'o2', epochs=2))
    assert a['history'][-1]['train'] == b['history'][-1]['train'] and a['test'] == b['test']
    assert [h['valid'] for h in a['history']] == [h['valid'] for h in b['history']]

def test_distributed_cli_bad_input(tmp_path):
    "The distributed entry point: unknown --set field, wrong value type, unknown data set, resume from a corrupt checkpoint."
    from interest_llm.distributed import main, parse_sets
    pytest.importorskip('interest_llm.model')
    base = ['--data', 'simulate', '--sim-users', '30', '--sim-items', '40', '--sim-steps', '5,10', '--epochs', '1',
            '--item-repr', 'id', '--n-negatives', '0', '--max-len', '6']
    with pytest.raises(ValueError, match=r"unknown ModelConfig field 'hiden_dim'; valid: .*hidden_dim"): _in_process(base + ['--set', 'hiden_dim=8'])
    with pytest.raises(ValueError, match=r"--set hidden_dim: invalid literal for int\(\) with base 10: 'big'"): _in_process(base + ['--set', 'hidden_dim=big'])
    with pytest.raises(ValueError, match=r"unknown data set 'ml100k' \(did you mean 'ml-100k'\?\)"): _in_process(base[:0] + ['--data', 'ml100k'] + base[2:])
    ck = tmp_path / 'ck'
    _in_process(base + ['--checkpoint-dir', str(ck)])
    (ck / 'last.json').write_text('{"format": "interest_llm.checkpoint/1", "epoch"')
    with pytest.raises(CheckpointError, match=r'last.json is truncated or corrupt'): _in_process(base + ['--checkpoint-dir', str(ck), '--resume', '--epochs', '2'])
    with pytest.raises(SystemExit): _in_process(base + ['--item-repr', 'words'])

