#!/usr/bin/env python
"""How cost grows: train seconds per epoch, peak memory and evaluation time of the interest model against events and items.

A thin command line over `interest_llm.scale` (nbs/22_scale.ipynb). Measures the events axis (10k, 100k, 1M, 5M events
over a fixed catalogue) and the items axis (1k, 10k, 100k, 1M items under a fixed event count) for the full softmax
(ce) and the sampled losses (bce, sampled), every point in a fresh process; writes OUT.json, OUT.md (a BENCHMARKS.md
section) and OUT.png (log-log figure with fitted slopes), and prints the FLOP rate against the matrix-multiply peak
measured in the same run and the catalogue size where a sampled loss must take over.

    python scripts/bench_scale.py                 # the full grid -> benchmarks/scale.{json,md,png}
    python scripts/bench_scale.py --quick         # the smallest points only, in this process (under 2 minutes) -> runs/scale-quick.*
    python scripts/bench_scale.py --from-json benchmarks/scale.json   # rewrite the markdown and the figure only
"""
import argparse, json, os, shlex, sys, time
from pathlib import Path

def _sizes(s):
    try: v = [int(float(x)) for x in s.split(',') if x.strip()]
    except ValueError: raise argparse.ArgumentTypeError(f"expected comma-separated sizes such as 10000,100000, got {s!r}") from None
    if not v or min(v) < 3: raise argparse.ArgumentTypeError(f"sizes must be >= 3, got {s!r}")
    return v

def _losses(s):
    v = [x.strip() for x in s.split(',') if x.strip()]
    bad = [x for x in v if x not in ('ce', 'bce', 'sampled')]
    if bad or 'ce' not in v: raise argparse.ArgumentTypeError(f"losses must include ce and be among ce, bce, sampled; got {s!r}")
    return v

def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='only the smallest points (10k and 20k events, 1k and 2k items, 2 steps)')
    p.add_argument('--events', type=_sizes, help='event counts of the events axis (default 10000,100000,1000000,5000000)')
    p.add_argument('--items', type=_sizes, help='catalogue sizes of the items axis (default 1000,10000,100000,1000000)')
    p.add_argument('--fixed-items', type=int, help='catalogue of the events axis (default 10000)')
    p.add_argument('--fixed-events', type=int, help='events of the items axis (default 100000)')
    p.add_argument('--losses', type=_losses, default=['ce', 'bce', 'sampled'], help='losses to measure (default ce,bce,sampled)')
    p.add_argument('--steps', type=int, help='timed training steps per point, after one FLOP-counted warm-up step (default 2)')
    p.add_argument('--threads', type=int, default=1, help='torch threads per point (default 1)')
    p.add_argument('--budget', type=float, default=3600., help='CPU seconds per epoch beyond which the full softmax is too slow (default 3600)')
    p.add_argument('--out', help='output stem (default benchmarks/scale; --quick: runs/scale-quick)')
    p.add_argument('--from-json', help="no grid: rewrite OUT.md and OUT.png from this JSON of an earlier run (its command is kept)")
    p.add_argument('--compare-ce', action='store_true', help='also time the earlier checkpointed chunked CE (kept in this script) against the fused one (100k events, 10k items)')
    p.add_argument('--full-epoch', type=int, metavar='EVENTS', help='also train one whole epoch (10k items, ce) at EVENTS events and evaluate it, in a fresh process')
    return p

def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parser().parse_args(argv)
    from interest_llm import scale
    import matplotlib; matplotlib.use('Agg')
    q = a.quick
    if a.threads < 1: sys.exit(f"bench_scale.py: error: --threads must be >= 1, got {a.threads}")
    events = a.events or ([10_000, 20_000] if q else list(scale.AXES['events']))
    items = a.items or ([1_000, 2_000] if q else list(scale.AXES['items']))
    fixed_items, fixed_events = a.fixed_items or (1_000 if q else 10_000), a.fixed_events or (10_000 if q else 100_000)
    steps = a.steps or 2
    if steps < 1: sys.exit(f"bench_scale.py: error: --steps must be >= 1, got {steps}")
    out = Path(a.out or ('runs/scale-quick' if q else 'benchmarks/scale'))
    out.parent.mkdir(parents=True, exist_ok=True)
    if a.from_json:
        try: res = json.loads(Path(a.from_json).read_text())
        except (OSError, json.JSONDecodeError) as e: sys.exit(f"bench_scale.py: error: --from-json {a.from_json}: {e}")
        if not isinstance(res, dict) or 'points' not in res: sys.exit(f"bench_scale.py: error: --from-json {a.from_json}: not a bench_scale.py result (no 'points')")
        extras(res, a, argv)
        report(res, out, a)
        return res
    command = 'python scripts/bench_scale.py' + (' ' + shlex.join(argv) if argv else '')
    print(f"$ {command}", flush=True)
    t0 = time.perf_counter()
    def save(r):                                            # after every point: a stopped run keeps what it measured
        r.update(command=command, wall_s=time.perf_counter() - t0, budget_s=a.budget, isolated=not q)
        out.with_suffix('.json').write_text(json.dumps(r, indent=1))
    res = scale.run_grid(events, items, a.losses, fixed_items, fixed_events, log=lambda s: print(s, flush=True),
                         isolated=not q, on_point=save, steps=steps, threads=a.threads)
    save(res)
    extras(res, a, argv)
    report(res, out, a)
    return res

def _isolated(fn, **kw):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1, mp_context=mp.get_context('spawn')) as ex: return ex.submit(fn, **kw).result()

def extras(res, a, argv):
    "The optional measurements beside the grid (--compare-ce, --full-epoch), each in a fresh process, added to `res` with their command."
    from interest_llm import scale
    command = 'python scripts/bench_scale.py ' + shlex.join(argv)
    if a.compare_ce:
        print('timing the checkpointed against the fused chunked CE ...', flush=True)
        res['compare_ce'] = dict(_isolated(scale.compare_ce), command=command)
    if a.full_epoch:
        print(f'training one whole epoch at {a.full_epoch:,} events ...', flush=True)
        try: fe = _isolated(scale.measure_point, n_events=a.full_epoch, n_items=10_000, loss='ce', full_epoch=True, peak_shapes=False, threads=a.threads)
        except Exception as e: fe = dict(n_events=a.full_epoch, n_items=10_000, loss='ce', error=f'{type(e).__name__}: {e}')
        res['full_epoch'] = [f for f in res.get('full_epoch', []) if f['n_events'] != a.full_epoch] + [dict(fe, command=command)]

def report(res, out, a):
    "Take-over point and notes into `res`; write OUT.json, OUT.md, OUT.png; print the summary lines."
    from interest_llm import scale
    losses = res['losses']
    item_pts = [p for p in res['points'] if p['axis'] == 'items' and 'error' not in p]
    sampled = 'sampled' if 'sampled' in losses else ('bce' if 'bce' in losses else None)
    if sampled and any(p['loss'] == sampled for p in item_pts):
        res['takeover'] = scale.takeover(item_pts, budget=res.get('budget_s', a.budget), sampled=sampled)
    swap = next((int(l.split()[1]) for l in open('/proc/meminfo') if l.startswith('SwapTotal:')), None) if os.path.exists('/proc/meminfo') else None
    mem = next((int(l.split()[1]) for l in open('/proc/meminfo') if l.startswith('MemTotal:')), None) if os.path.exists('/proc/meminfo') else None
    big = [p for p in res['points'] if p['axis'] == 'events' and p['n_events'] >= 1_000_000 and 'error' not in p]
    notes = []
    for e in sorted({p['n_events'] for p in big}):
        ps = [p for p in big if p['n_events'] == e]
        notes.append(f"**{e:,} events** ({ps[0]['n_items']:,} items): peak resident memory of training and evaluating "
                     + ', '.join(f"{p['peak_rss_mb']:,.0f} MB ({p['loss']})" for p in ps)
                     + (f", of {mem / 1024**2:.1f} GiB in the machine" if mem else '')
                     + ('; the machine has no swap space, so nothing was swapped' if swap == 0 else f'; swap space: {swap} kB') + '.')
    if not res.get('isolated', True):
        notes.append('These points ran one after another in one process (`--quick`), so a peak-memory figure is the largest of its own and every earlier point\'s.')
    res['notes'] = notes
    sl = scale.slopes(res)
    (out.with_suffix('.json')).write_text(json.dumps(res, indent=1))
    fig = scale.plot_scale(res); fig.savefig(out.with_suffix('.png'), dpi=110)
    (out.with_suffix('.md')).write_text(scale.scale_markdown(res, figure=f'{out.with_suffix(".png")}'))
    ok = [p for p in res['points'] if 'error' not in p]
    if ok:
        ref = next((p for p in ok if p['loss'] == 'ce' and (p['n_events'], p['n_items']) == (res['fixed_events'], res['fixed_items'])), ok[0])
        print(f"slopes of CPU s/epoch: " + ', '.join(f'{k} {v:.2f}' for k, v in sl.items()))
        print(f"FLOP rate at {ref['n_events']:,} events, {ref['n_items']:,} items ({ref['loss']}): {ref['gflops_cpu']:.1f} GFLOP/s against a 2048^3 "
              f"torch.mm at {ref['mm']['square']['gflops_cpu']:.1f} GFLOP/s: ratio {ref['peak_ratio']:.2f} (the CE chunk's own shape "
              f"{ref['mm']['ce_chunk']['gflops_cpu']:.1f} GFLOP/s: {ref['gflops_cpu'] / ref['mm']['ce_chunk']['gflops_cpu']:.2f}); all points: "
              + ', '.join(f"{l} {min(p['peak_ratio'] for p in ok if p['loss'] == l):.2f}-{max(p['peak_ratio'] for p in ok if p['loss'] == l):.2f}"
                          for l in res['losses'] if any(p['loss'] == l for p in ok)))
    if res.get('takeover'):
        t = res['takeover']
        f = lambda v: f'{v:,.0f} items' if v else 'beyond the measured range'
        print(f"sampled loss takes over: ce's CPU s/epoch above {t['sampled']}'s " + ('at every measured size, from ' if t.get('ce_exceeds_sampled_everywhere') else 'from ')
              + f"{f(t['ce_exceeds_sampled_at'])}; above {t['budget']:.0f} s from {f(t.get('ce_exceeds_budget_at'))}"
              + (f" (extended beyond the range: about {t['ce_budget_extrapolated']:,.0f} items)" if t.get('ce_budget_extrapolated') else '')
              + '; peak memory ce vs ' + t['sampled'] + ': ' + ', '.join(f"{p['n_items']:,} items {p['peak_rss_mb']:,.0f}/{q['peak_rss_mb']:,.0f} MB"
                for p in item_pts for q in item_pts if p['loss'] == 'ce' and q['loss'] == t['sampled'] and p['n_items'] == q['n_items']))
    print(f"wrote {out.with_suffix('.json')}, {out.with_suffix('.md')}, {out.with_suffix('.png')} (grid {res['wall_s']:.0f} s wall)")

if __name__ == '__main__':
    main()
