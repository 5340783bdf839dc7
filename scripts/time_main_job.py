#!/usr/bin/env python
"""Time the main job as a new user meets it: a fresh virtual environment, `pip install torch==2.13.0 .`, an empty
embedding cache, then `interest-llm train` with no options. Writes benchmarks/main-job.{json,md} (BENCHMARKS.md
appends the .md section; the README quotes the .json).

    python scripts/time_main_job.py                 # the measurement (run it on an otherwise idle machine)
    python scripts/time_main_job.py --repeat 3      # three timed runs after one install: median and range
    python scripts/time_main_job.py --reuse-venv V  # skip the install: time `interest-llm train` from the venv V
    python scripts/time_main_job.py --report-only   # rewrite the .md from the .json

The install is timed too but reported apart: it depends on the network and pip's cache, the training does not.
The machine's load average is recorded before and after; a figure measured above a load of about 1 on top of the
job itself is an upper bound.
"""
import argparse, json, os, platform, re, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / 'benchmarks' / 'main-job'

def _stage_times(log:str) -> dict:
    "Seconds of the stages, read from the job's own progress lines."
    out = {}
    m = re.search(r'text vectors: \(\d+, \d+\) from .* in ([\d.]+) s', log)
    if m: out['embed_s'] = float(m.group(1))
    ep = re.findall(r'^epoch +(\d+)/\d+ .*\(([\d.]+)\+([\d.]+) s\)', log, re.M)
    if ep: out.update(ours_epochs=len(ep), ours_train_s=sum(float(a) for _, a, _ in ep), ours_valid_s=sum(float(b) for _, _, b in ep))
    for name, secs in re.findall(r'^baseline (\S+) +test ndcg@10 [\d.]+ +hr@10 [\d.]+ +\(([\d.]+) s\)', log, re.M):
        out[f'baseline_{name}_s'] = float(secs)
    bep = re.findall(r'^baseline gru4rec epoch', log, re.M)
    if bep: out['gru4rec_epochs'] = len(bep)
    m = re.search(r'^best epoch (\d+) \(([^)]*)\)', log, re.M)
    if m: out.update(ours_best_epoch=int(m.group(1)), ours_stop=m.group(2))
    return out

def install(work:Path, env:dict) -> tuple:
    "A fresh virtual environment with `pip install torch==2.13.0 .`: (its path, seconds)."
    venv, t = work / 'venv', time.perf_counter()
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    subprocess.run(f'. {venv}/bin/activate && pip install -q torch==2.13.0 {ROOT}', shell=True, check=True, env=env,
                   executable='/bin/bash')
    return venv, time.perf_counter() - t

def time_train(venv:Path, work:Path, env:dict) -> dict:
    "One `interest-llm train` with an empty embedding cache, timed: its figures and its stages."
    from interest_llm.runs import time_profile
    work.mkdir(parents=True)
    env = dict(env, INTEREST_LLM_CACHE=str(work / 'cache'))
    load0, t = os.getloadavg(), time.perf_counter()
    with open(work / 'train.log', 'w') as f:
        p = subprocess.run([str(venv / 'bin' / 'interest-llm'), 'train', '--out', str(work / 'run')], cwd=work, env=env,
                           stdout=f, stderr=subprocess.STDOUT)
    wall, load1 = time.perf_counter() - t, os.getloadavg()
    log = (work / 'train.log').read_text()
    if p.returncode != 0: sys.exit(f"interest-llm train failed (exit {p.returncode}); log: {work / 'train.log'}\n{log[-2000:]}")
    m = json.loads((work / 'run' / 'metrics.json').read_text())
    return dict(command='interest-llm train', wall_s=wall, load_before=load0, load_after=load1, cpus=os.cpu_count(),
                python=platform.python_version(), torch=m['torch'], threads=m['threads'], peak_rss_mb=m['peak_rss_mb'],
                test_ndcg10=m['test']['ndcg@10'], test_hr10=m['test']['hr@10'],
                baselines={k: v['test']['ndcg@10'] for k, v in m['baselines'].items()}, precision=m.get('precision'),
                baseline_process=m.get('baseline_process'),
                profile=[dict(p, share=None if p['share'] != p['share'] else p['share']) for p in time_profile(m).to_dict('records')],
                finished=time.strftime('%Y-%m-%d %H:%M'), **_stage_times(log))

def _version() -> str:
    "The package version being timed (settings.ini)."
    import configparser
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    return cfg['DEFAULT']['version']

def measure(reuse_venv:str|None, repeat:int=1) -> dict:
    "`repeat` timed runs (one install unless `reuse_venv`): the median run's figures, with every run's wall time."
    work = Path(tempfile.mkdtemp(prefix='main-job-'))
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()   # what is installed
    env = dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', MPLBACKEND='Agg')
    for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): env.pop(k, None)      # the user's default: torch picks the threads
    venv, install_s = (Path(reuse_venv), None) if reuse_venv else install(work, env)
    runs = [time_train(venv, work / f'run{i}', env) for i in range(repeat)]
    walls = [r['wall_s'] for r in runs]
    res = dict(sorted(runs, key=lambda r: r['wall_s'])[len(runs) // 2], install_s=install_s, fresh_venv=not reuse_venv,
               empty_cache=True, commit=commit, version=_version(), repeats=walls, wall_median=statistics.median(walls), wall_min=min(walls),
               wall_max=max(walls), test_ndcg10_runs=[r['test_ndcg10'] for r in runs])
    shutil.rmtree(work, ignore_errors=True)
    return res

def markdown(r:dict) -> str:
    mins = lambda s: f"{int(s // 60)} min {s % 60:.0f} s"
    bp = r.get('baseline_process') or {}; side = bp.get('baselines') or []
    base = ', '.join(f"{k} {v:.4f}" for k, v in sorted(r['baselines'].items(), key=lambda kv: -kv[1]))
    L = ['## The main job (`interest-llm train`, no options)', '',
         f"Measured with `python scripts/time_main_job.py` on {r['finished']} UTC: "
         f"{'a fresh virtual environment (`pip install torch==2.13.0 .`), ' if r['fresh_venv'] else ''}an empty embedding cache, "
         f"{r['cpus']} CPUs, torch {r['torch']}, load average {r['load_before'][0]:.1f} before and {r['load_after'][0]:.1f} after "
         f"(the job itself adds about {r['cpus']}). " + (f"Our model trained on {r['threads'] - 1} of the {r['threads']} threads while the neural baselines "
         f"({', '.join(side)}) trained in a second process on the other (`--baseline-process auto`), then on {'both' if r['threads'] == 2 else 'all ' + str(r['threads'])}; " if side else
         f"Our model and then the baselines trained on {r['threads']} threads; ") + f"the loss's products in {r.get('precision') or 'fp32'}.", '',
         '| stage | seconds |', '|---|---:|',
         f"| embedding the item texts (MiniLM, empty cache) | {r.get('embed_s', float('nan')):.1f} |",
         f"| our model: {r.get('ours_epochs', '?')} epochs (best {r.get('ours_best_epoch', '?')}, {r.get('ours_stop', '?')}), training | {r.get('ours_train_s', float('nan')):.1f} |",
         f"| our model: validation after every epoch | {r.get('ours_valid_s', float('nan')):.1f} |"]
    L += [f"| baseline {k[9:-2]}" + (f" ({r['gru4rec_epochs']} epochs)" if k == 'baseline_gru4rec_s' and 'gru4rec_epochs' in r else '')
          + (' — in the second process, alongside our model' if k[9:-2] in side else '') + f" | {v:.1f} |"
          for k, v in r.items() if k.startswith('baseline_') and k.endswith('_s')]
    L += [f"| **total wall time** | **{r['wall_s']:.1f}** ({mins(r['wall_s'])}) |", '']
    if len(r.get('repeats') or []) > 1:
        L += [f"Repeated {len(r['repeats'])} times (`--repeat {len(r['repeats'])}`, each with an empty cache): wall time median "
              f"{r['wall_median']:.1f} s, range {r['wall_min']:.1f}–{r['wall_max']:.1f} s; the table is the median run. Test "
              f"NDCG@10 of the runs: {', '.join(f'{v:.4f}' for v in r['test_ndcg10_runs'])}.", '']
    if r.get('profile'):
        L += ["The median run's own clock (`runs.time_profile` of its metrics.json; a stage in the second process overlaps "
              "the others):", '', '| stage | seconds | share |', '|---|---:|---:|']
        L += [f"| {p['stage']} | {p['seconds']:.1f} | {'—' if p['share'] is None or p['share'] != p['share'] else format(p['share'], '.0%')} |"
              for p in r['profile']] + ['']
    L += [
          f"Test NDCG@10 (full ranking, unmasked): ours {r['test_ndcg10']:.4f}; baselines {base}. Peak memory {r['peak_rss_mb']:.0f} MB"
          + (f" (this process; the baseline process's own peak was {bp['peak_rss_mb']:.0f} MB)." if bp.get('peak_rss_mb') else '.')
          + (f" The install before it took {r['install_s']:.0f} s (pip's cache warm)." if r.get('install_s') else ''), '']
    return '\n'.join(L)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--reuse-venv', help='time `interest-llm train` from this existing venv (no install)')
    ap.add_argument('--repeat', type=int, default=1, help='time this many runs (one install); the median run is reported')
    ap.add_argument('--report-only', action='store_true', help='rewrite benchmarks/main-job.md from benchmarks/main-job.json')
    a = ap.parse_args()
    if a.repeat < 1: sys.exit(f"--repeat must be at least 1, got {a.repeat}")
    if a.report_only: r = json.loads(OUT.with_suffix('.json').read_text())
    else:
        r = measure(a.reuse_venv, a.repeat)
        OUT.with_suffix('.json').write_text(json.dumps(r, indent=1) + '\n')
    OUT.with_suffix('.md').write_text(markdown(r))
    print(markdown(r))
