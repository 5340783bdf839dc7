#!/usr/bin/env python
"""Throughput of data-parallel training (interest_llm.distributed) on this machine: 1 vs 2 processes.

Trains the same InterestModel on the same simulated data with the same EFFECTIVE batch (per-rank batch x number of
processes) three ways — 1 process x 1 thread, 1 process x 2 threads, 2 processes x 1 thread (gloo) — through
`python -m torch.distributed.run ... -m interest_llm.distributed`, and prints seconds per training epoch, training
events (target positions) per second and the test metrics (which should agree: same effective batch).
Caveat: a 2-core machine; the 2 processes share the cores with everything else that runs (load is printed).

Run: python scripts/bench_distributed.py            (about 2-4 minutes)
     python scripts/bench_distributed.py --users 800 --epochs 3 --batch 256
"""
import argparse, json, os, socket, statistics, subprocess, sys, tempfile, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def one(nproc, threads, a, work):
    out = Path(work) / f'p{nproc}t{threads}'
    cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', '--nnodes=1', '--master_addr=127.0.0.1',
           f'--master_port={free_port()}', '-m', 'interest_llm.distributed', '--data', 'simulate', '--sim-users', str(a.users),
           '--sim-items', str(a.items), '--epochs', str(a.epochs), '--patience', str(a.epochs + 1), '--batch-size', str(a.batch // nproc),
           '--max-len', '50', '--seed', '0',
           '--lr', '1e-3', '--scheduler', 'none', '--precision', 'fp32',   # the settings of benchmarks/distributed.md
           '--embed-cache', str(Path(work) / 'cache'), '--out', str(out)]
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads), 'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])}
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode: sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-3000:]}")
    m = json.loads((out / 'metrics.json').read_text())
    per_epoch = statistics.median(h['train_s'] for h in m['history'])       # median over epochs: robust to load spikes
    return dict(setup=f'{nproc} proc x {threads} thread', wall_s=time.perf_counter() - t0, s_epoch=per_epoch,
                ev_s=m['distributed']['train_events_per_epoch'] / per_epoch, cmd=f'OMP_NUM_THREADS={threads} python ' + ' '.join(cmd[1:]), **m)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--users', type=int, default=400); ap.add_argument('--items', type=int, default=300)
    ap.add_argument('--epochs', type=int, default=3); ap.add_argument('--batch', type=int, default=128, help='effective batch')
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}; torch threads per process = OMP_NUM_THREADS")
    with tempfile.TemporaryDirectory() as work:
        one(1, 1, argparse.Namespace(**{**vars(a), 'epochs': 1}), work)     # warm-up: fills the text-embedding cache
        rows = [one(n, t, a, work) for n, t in ((1, 1), (1, 2), (2, 1))]
    print(f"\nsimulated data: {a.users} users, {a.items} items; effective batch {a.batch}; {a.epochs} epochs; "
          f"{rows[0]['distributed']['train_events_per_epoch']} training events (targets) per epoch\n")
    print(f"{'setup':<22}{'per-rank batch':>15}{'s/epoch':>10}{'events/s':>11}{'speed-up':>10}{'test ndcg@10':>14}{'wall s':>9}")
    base = rows[0]['s_epoch']
    for r in rows:
        print(f"{r['setup']:<22}{r['distributed']['per_rank_batch']:>15}{r['s_epoch']:>10.2f}{r['ev_s']:>11.0f}"
              f"{base / r['s_epoch']:>10.2f}{r['test']['ndcg@10']:>14.4f}{r['wall_s']:>9.1f}")
    print("s/epoch = median over epochs of the slowest rank's training time (validation excluded); wall s includes start-up,")
    print("data, text embedding (cached after the warm-up run) and evaluation. Test metrics differ slightly because rank 1")
    print("draws its own dropout/VAE noise; with those off the runs agree (tests/test_distributed.py).")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(f"reproduce: python scripts/bench_distributed.py --users {a.users} --items {a.items} --epochs {a.epochs} --batch {a.batch}")
    print("the runs (PYTHONPATH = repo; temporary folders):")
    for r in rows: print('  ' + r['cmd'])

if __name__ == '__main__': main()
