#!/usr/bin/env python
"""Active latent units with the command line's defaults: `interest-llm train --dataset D --baselines none --seed S`
for each seed (one torch thread each), then the latent diagnostics of the best epoch from each run's metrics.json.
Writes benchmarks/latent-<dataset>.md (a section of BENCHMARKS.md).

    python scripts/latent_defaults.py --dataset ml-100k --seeds 0,1,2

A unit counts as active when the variance over positions of its posterior mean exceeds 0.01 (Burda et al. 2016), as in
the training log's `z: a/Z active` (notebook 04).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def run(dataset:str, seed:int, folder:Path, data_dir=None) -> dict:
    cmd = ['train', '--dataset', dataset, '--baselines', 'none', '--seed', str(seed), '--threads', '1', '--no-progress', '--out', str(folder)]
    if data_dir: cmd += ['--data-dir', data_dir]
    p = subprocess.run([sys.executable, '-c', 'from interest_llm.cli import main; main()', *cmd], capture_output=True, text=True)
    if p.returncode != 0: sys.exit(f"interest-llm {' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    m = json.loads((folder / 'metrics.json').read_text())
    return dict(seed=seed, active=m['latent']['active_units'], Z=m['latent']['latent_dim'], kl=m['latent']['kl'],
                best_epoch=m['timing']['best_epoch'], epochs=m['timing']['epochs_run'], test_ndcg10=m['test']['ndcg@10'],
                precision=m.get('precision'))

def markdown(dataset, rows) -> str:
    act = [r['active'] for r in rows]
    L = [f"## Active latent units with the defaults ({dataset})", '',
         f"Command: `python scripts/latent_defaults.py --dataset {dataset} --seeds {','.join(str(r['seed']) for r in rows)}` "
         f"({time.strftime('%Y-%m-%d %H:%M')} UTC): per seed S, `interest-llm train --dataset {dataset} --baselines none --seed S "
         f"--threads 1 --no-progress`, the CLI's defaults otherwise (loss products in {rows[0]['precision']}); the latent diagnostics of the "
         "best validation epoch (a unit is active when the variance of its posterior mean over the validation positions exceeds 0.01).", '',
         '| seed | active units | Z | KL (nats) | best epoch / epochs | test NDCG@10 |', '|---:|---:|---:|---:|---|---:|']
    L += [f"| {r['seed']} | {r['active']} | {r['Z']} | {r['kl']:.3f} | {r['best_epoch']} / {r['epochs']} | {r['test_ndcg10']:.4f} |" for r in rows]
    L += ['', f"Mean {statistics.mean(act):.1f} of {rows[0]['Z']} units active; fewest in one seed: {min(act)} "
          + ('(at least half in every seed).' if min(act) >= rows[0]['Z'] / 2 else '(below half in at least one seed).'), '']
    return '\n'.join(L) + '\n'

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--dataset', default='ml-100k')
    ap.add_argument('--seeds', default='0,1,2')
    ap.add_argument('--data-dir', default=None, help='folder holding the data set (default: $INTEREST_LLM_DATA)')
    ap.add_argument('--out', default=None, help='markdown file (default: benchmarks/latent-<dataset>.md)')
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = [run(a.dataset, int(s), Path(d) / f'seed{s}', a.data_dir) for s in a.seeds.split(',')]
    out = Path(a.out or ROOT / 'benchmarks' / f'latent-{a.dataset}.md')
    out.write_text(markdown(a.dataset, rows)); print(out.read_text())
