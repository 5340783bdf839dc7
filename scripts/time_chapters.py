#!/usr/bin/env python
"""Time each chapter under `nbdev_test`, one notebook at a time, and write the table to `benchmarks/chapter-times.md`.

For every notebook the script records the 1-minute load average just before the run (`os.getloadavg()`, the machine's
own figure: other jobs included), runs `nbdev_test --path nbs/<notebook>` (the default flags, so `#| slow` cells are
skipped, as in CI), measures the wall time, the CPU time of the run (user + system of `nbdev_test` and the processes
it waited for, from `getrusage(RUSAGE_CHILDREN)`), the exit status, and the load average just after. The budget is
3 minutes per chapter on an idle 2-core machine. On a loaded machine the wall time grows with the load while the CPU
time does not, so with `OMP_NUM_THREADS=1` (one busy thread per notebook) the CPU time is what the wall time would
be on an idle machine, roughly; both are in every row, with the load.

Usage (from the repository root):

    python scripts/time_chapters.py                           # all nbs/*.ipynb -> benchmarks/chapter-times.md
    python scripts/time_chapters.py 15_evaluate 23_distributed  # only these; other rows of the file are kept

Rows of notebooks not timed in this call are kept from the existing file (each row carries its own date and load).
"within 3 min" is judged on the wall time of the row (so a row taken on a busy machine can say "no" for a chapter
that fits on an idle one; its CPU time tells).
"""
import argparse, os, re, resource, subprocess, sys, time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO/'benchmarks'/'chapter-times.md'
BUDGET = 180.0
HEADER = ('| notebook | wall s | CPU s | within 3 min | exit status | load avg (1 min) before | load avg after | run at (UTC) |\n'
          '|---|---:|---:|---|---:|---:|---:|---|')

def time_one(nb, flags=None, timeout=3600):
    "Run `nbdev_test --path nb` and return a row dict (seconds, rc, load before/after, date)."
    cmd = ['nbdev_test', '--path', str(nb)] + (['--flags', flags] if flags else [])
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    date = datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M')
    try:
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        rc, err = r.returncode, (r.stderr or r.stdout)[-2000:]
    except subprocess.TimeoutExpired: rc, err = 'timeout', f'killed after {timeout}s'
    dt = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return dict(notebook=Path(nb).name, seconds=dt, cpu=cpu, rc=rc, load0=load0, load1=os.getloadavg()[0], date=date, err=err)

def fmt(r):
    ok = 'yes' if r['rc'] == 0 and r['seconds'] <= BUDGET else ('no' if r['rc'] == 0 else 'failed')
    return (f"| {r['notebook']} | {r['seconds']:.0f} | {r['cpu']:.0f} | {ok} | {r['rc']} | {r['load0']:.2f} | {r['load1']:.2f} | "
            f"{r['date']} |")

def read_rows(path):
    "Existing table rows of `path`: {notebook: line}."
    if not Path(path).exists(): return {}
    return {m.group(1): m.group(0) for m in re.finditer(r'^\| (\S+\.ipynb) \|.*$', Path(path).read_text(), flags=re.M)}

def write(path, rows):
    env = ', '.join(f'{k}={os.environ[k]}' for k in ('OMP_NUM_THREADS', 'MPLBACKEND') if k in os.environ) or 'none set'
    text = (f"## Chapter run times under `nbdev_test`\n\n"
            f"Written by `python scripts/time_chapters.py` (all chapters; or `python scripts/time_chapters.py NAME ...` "
            f"to re-time some and keep the other rows). Each row: `nbdev_test --path nbs/NAME.ipynb` (default flags: "
            f"`#| slow` cells skipped), wall time, exit status, and the machine's 1-minute load average before and "
            f"after the run, and the CPU time (user + system) of the run. Machine: {os.cpu_count()} CPUs, no GPU; environment: {env}. Budget: "
            f"{BUDGET:.0f} s per chapter on an idle 2-core machine; a row taken at a load average well above 0 "
            f"overstates the idle time (other jobs share the cores).\n\n{HEADER}\n"
            + '\n'.join(rows[k] for k in sorted(rows)) + '\n')
    Path(path).write_text(text)
    return text

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('names', nargs='*', help='notebooks (file names or stems); default: all nbs/*.ipynb')
    ap.add_argument('--out', default=str(OUT), help='markdown file to write (default: benchmarks/chapter-times.md)')
    ap.add_argument('--flags', default=None, help='passed to nbdev_test --flags (default: none)')
    a = ap.parse_args(argv)
    nbs = sorted((REPO/'nbs').glob('*.ipynb'))
    if a.names: nbs = [p for p in nbs if p.name in a.names or p.stem in a.names]
    if not nbs: sys.exit(f'no notebook matches {a.names}')
    rows = read_rows(a.out)
    for nb in nbs:
        r = time_one(nb.relative_to(REPO), a.flags)
        rows[r['notebook']] = fmt(r)
        print(fmt(r), flush=True)
        if r['rc'] != 0: print(r['err'], file=sys.stderr, flush=True)
        write(a.out, rows)  # after every notebook: a long run leaves a partial table, not none
    print(write(a.out, rows))

if __name__ == '__main__': main()
