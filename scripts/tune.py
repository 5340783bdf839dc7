#!/usr/bin/env python
"""Give every model the same validation budget: one grid of `train` options per model, chosen on validation NDCG@10 only.

Each (model, grid point) is one `interest-llm train` process on one seed (1 torch thread, no baselines inside); run
folders land in --runs, and a table of every run, best first, with the chosen options per model, is written to
benchmarks/tuning-<dataset>.md (test figures are never read: `scripts/tuning_log.py` tabulates validation only).

    python scripts/tune.py --dataset amazon-office --models ours,sasrec,gru4rec,lstm4rec,text_sasrec \
        --grid 'hidden=64,128;dropout=0.2,0.5' --jobs 2

`hidden` sets the width of every model (for ours also --emb-dim, so that item vectors and states keep one width).
Finished grid points (a run folder with metrics.json) are not run again, so an interrupted tuning resumes.
"""
import argparse, itertools, json, os, shlex, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'scripts'))
from tuning_log import options as _options  # noqa: E402

def grid_points(spec:str) -> list:
    "'a=1,2;b=x,y' -> [{'a': '1', 'b': 'x'}, {'a': '1', 'b': 'y'}, ...] (every combination, in order)."
    axes = []
    for part in filter(None, (p.strip() for p in spec.split(';'))):
        if '=' not in part: raise SystemExit(f"--grid: '{part}' is not NAME=V1,V2,...")
        k, vs = part.split('=', 1)
        vals = [v.strip() for v in vs.split(',') if v.strip()]
        if not vals: raise SystemExit(f"--grid: no values for {k}")
        axes.append([(k.strip(), v) for v in vals])
    return [dict(c) for c in itertools.product(*axes)] if axes else [{}]

def point_argv(model:str, point:dict) -> list:
    "The `train` options of one grid point."
    out = []
    for k, v in point.items():
        out += [f'--{k.replace("_", "-")}', v]
        if k == 'hidden' and model == 'ours': out += ['--emb-dim', v]
    return out

def _without(argv:list, opts:tuple) -> list:
    "argv without the given options and their values."
    out, skip = [], False
    for x in argv:
        if skip: skip = False; continue
        if x in opts: skip = True; continue
        if any(x.startswith(o + '=') for o in opts): continue
        out.append(x)
    return out

def run_name(model:str, point:dict) -> str: return model + ''.join(f'-{k}{v}' for k, v in point.items())

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--dataset', required=True)
    p.add_argument('--models', default='ours,sasrec,gru4rec,lstm4rec,text_sasrec')
    p.add_argument('--grid', default='hidden=64,128;dropout=0.2,0.5', help="NAME=V1,V2;NAME=... (train options without --)")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--jobs', type=int, default=1, help='runs side by side (one torch thread each)')
    p.add_argument('--runs', default='runs/tuning', help='folder of the run folders')
    p.add_argument('--out', default=None, help='markdown file (default benchmarks/tuning-<dataset>.md)')
    p.add_argument('--data-dir', default=None)
    p.add_argument('--dry-run', action='store_true', help='print the commands only')
    p.add_argument('--report-only', action='store_true', help='tabulate every finished run folder under --runs/<dataset> without running')
    p.add_argument('--note', default='', help='a sentence added under the table (e.g. how the defaults relate to the best point)')
    a = p.parse_args(argv)
    exe = shutil.which('interest-llm') or sys.exit('interest-llm is not on PATH: pip install the package first')
    todo, folders = [], []
    for model in [m.strip() for m in a.models.split(',') if m.strip()]:
        for pt in grid_points(a.grid):
            out = Path(a.runs) / a.dataset / run_name(model, pt)
            folders.append(out)
            if (out / 'metrics.json').exists(): continue
            cmd = [exe, 'train', '--dataset', a.dataset, '--model', model, '--seed', str(a.seed), '--baselines', 'none',
                   '--threads', '1', '--no-progress', '--out', str(out), *point_argv(model, pt)]
            if a.data_dir: cmd += ['--data-dir', a.data_dir]
            if out.exists(): shutil.rmtree(out)                  # an interrupted grid point starts again
            todo.append(cmd)
    if a.report_only: todo, folders = [], sorted(p for p in (Path(a.runs) / a.dataset).iterdir() if (p / 'metrics.json').exists())
    if a.dry_run:
        for c in todo: print(' '.join(c[1:]))
        return
    running = []
    while todo or running:
        while todo and len(running) < a.jobs:
            c = todo.pop(0); print('run: interest-llm', ' '.join(c[1:]), flush=True)
            running.append(subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        time.sleep(2)
        for r in [r for r in running if r.poll() is not None]:
            running.remove(r)
            if r.returncode: print(f"failed ({r.returncode}): {' '.join(r.args[1:])}\n{r.stderr.read()[-2000:]}", file=sys.stderr)
    rows = []
    for f in folders:
        if not (f / 'metrics.json').exists(): continue
        m = json.loads((f / 'metrics.json').read_text())
        rows.append(dict(model=m['model'], valid=m['valid']['ndcg@10'], options=_options(m['command']),
                         best_epoch=m['timing'].get('best_epoch'), epochs=m['timing'].get('epochs_run'),
                         s_epoch=m['timing'].get('train_s_per_epoch')))
    shown = _without(sys.argv[1:] if argv is None else argv, ('--runs', '--out', '--data-dir', '--note'))   # no local paths in the table
    md = markdown(a.dataset, a.grid, a.seed, rows, ' '.join(shlex.quote(x) for x in shown), a.note)
    out = Path(a.out or ROOT / 'benchmarks' / f'tuning-{a.dataset}.md')
    out.write_text(md); print(md)

def markdown(ds:str, grid:str, seed:int, rows:list, command:str, note:str='') -> str:
    "The tuning section: the best options per model, then every run best first."
    best = {}
    for r in sorted(rows, key=lambda r: -r['valid']): best.setdefault(r['model'], r)
    L = [f"## Tuning on {ds} (validation only)", '',
         f"Every model got the same budget: the grid `{grid}` on seed {seed}, each point one `interest-llm train` run "
         f"with early stopping on validation NDCG@10. The benchmark rows of {ds} run with the options of `BENCH_OPTIONS` in "
         f"interest_llm/benchmark.py, shown with every row in BENCHMARKS.md. No test figure was read to choose. Command: `python scripts/tune.py {command}`.", '',
         '| model | best valid NDCG@10 | chosen options |', '|---|---:|---|']
    L += [f"| {m} | {r['valid']:.4f} | `{r['options']}` |" for m, r in best.items()]
    if note: L += ['', note]
    L += ['', '| valid NDCG@10 | model | options | best epoch | epochs run | train s/epoch |', '|---:|---|---|---:|---:|---:|']
    f = lambda v, d=1: '—' if v is None else f'{v:.{d}f}' if isinstance(v, float) else str(v)
    L += [f"| {r['valid']:.4f} | {r['model']} | `{r['options']}` | {f(r['best_epoch'])} | {f(r['epochs'])} | {f(r['s_epoch'])} |"
          for r in sorted(rows, key=lambda r: -r['valid'])]
    return '\n'.join(L) + '\n'

if __name__ == '__main__': main()
