#!/usr/bin/env python
"""Tabulate tuning runs by their VALIDATION scores only (test figures are deliberately not read), for BENCHMARKS.md.

Usage: python scripts/tuning_log.py RUN_FOLDER [RUN_FOLDER ...] > benchmarks/tuning.md
Each RUN_FOLDER is an `interest-llm train --out RUN_FOLDER ...` run; its metrics.json gives the command, the best
validation NDCG@10 (the model-selection metric of PROTOCOL.md) and the epochs.
"""
import json, shlex, sys
from pathlib import Path

def options(cmd: str) -> str:
    "The command without --out/--threads/--no-progress/--baselines, which do not change the model."
    a, out, skip = shlex.split(cmd)[2:], [], {'--out': 1, '--threads': 1, '--baselines': 1, '--no-progress': 0}
    i = 0
    while i < len(a):
        if a[i] in skip: i += 1 + skip[a[i]]; continue
        out.append(a[i]); i += 1
    return shlex.join(out)

def main(paths):
    rows = []
    for p in map(Path, paths):
        f = p / 'metrics.json'
        if not f.exists(): print(f"skipped {p}: no metrics.json", file=sys.stderr); continue
        m = json.loads(f.read_text())
        t = m['timing']
        rows.append((m['valid']['ndcg@10'], m['model'], m['seed'], options(m['command']), t.get('best_epoch'), t.get('epochs_run')))
    if not rows: sys.exit("no finished runs given")
    print('## Tuning runs (validation only)\n')
    print('Model choices for the benchmark rows were made on validation NDCG@10 alone; no test figure was looked up to '
          'choose them. Every tuning run is listed here, best first; run one with '
          '`interest-llm train <options> --baselines none --threads 1 --out <folder>` and tabulate folders with '
          '`python scripts/tuning_log.py <folder>...`.\n')
    print('| valid NDCG@10 | model | seed | options | best epoch | epochs run |\n|---|---|---|---|---|---|')
    for v, model, seed, opts, be, er in sorted(rows, key=lambda r: -r[0]):
        print(f"| {v:.4f} | {model} | {seed} | `{opts}` | {be if be is not None else '—'} | {er if er is not None else '—'} |")

if __name__ == '__main__': main(sys.argv[1:])
