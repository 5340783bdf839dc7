#!/usr/bin/env python
"""Benchmark of the real-time InterestTracker (nbs/26_tracker.ipynb): events/second and latency per update.

Replays the embedded UCI Online Retail events in time order through an `InterestModel` of the embedded data's size
(2,500 items, 384-d text vectors, default ModelConfig: emb 64, hidden 64, latent 32, LSTM) with one torch thread.
Scores do not depend on trained weights for timing, so the model is freshly initialised (seeded); text vectors are
random 384-d vectors unless --minilm is given (then the offline MiniLM embeds the catalogue first).

    python scripts/bench_tracker.py [--events 20000] [--batch 256] [--minilm] [--probe-users 300]
"""
import argparse, platform, sys, time
import numpy as np, torch
from interest_llm.data import leave_one_out
from interest_llm.datasets import load_embedded
from interest_llm.model import ModelConfig, InterestModel
from interest_llm.tracker import InterestTracker

def pct(x, q): return 1e3 * float(np.percentile(x, q))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--events', type=int, default=20000, help='events replayed per measurement')
    p.add_argument('--batch', type=int, default=256, help='events per update_many micro-batch')
    p.add_argument('--cell', default='lstm', choices=['lstm', 'gru', 'rnn'])
    p.add_argument('--minilm', action='store_true', help='use real MiniLM text vectors (slower start)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--probe-users', type=int, default=300, help='users timed for the work-per-event figures')
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    inter, items = load_embedded()
    split = leave_one_out(inter, n_negatives=0)
    if a.minilm:
        from interest_llm.llm import embed_catalogue
        text = embed_catalogue(split, items, progress=False)
    else: text = torch.randn(split.n_items + 1, 384); text[0] = 0
    cfg = ModelConfig(n_items=split.n_items, text_dim=text.shape[1], item_repr='text', cell=a.cell)
    model = InterestModel(cfg, text, item_ids=split.item_ids).eval()
    ev = inter.sort_values('timestamp', kind='stable').head(a.events)
    U, I, T = ev.user.tolist(), ev.item.tolist(), ev.timestamp.astype(int).tolist()
    print(f"$ python {' '.join(sys.argv)}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}; "
          f"model: {cfg.cell} E={cfg.emb_dim} H={cfg.hidden_dim} Z={cfg.latent_dim}, {split.n_items} items; "
          f"{len(ev)} events of {ev.user.nunique()} users (embedded Online Retail, time order)")
    rows = []
    for name, call in (('observe (state only)', lambda tr, j: tr.observe(U[j], I[j], T[j])),
                       ('update -> top-10 list', lambda tr, j: tr.update(U[j], I[j], T[j], as_frame=False)),
                       ('update -> top-10 DataFrame', lambda tr, j: tr.update(U[j], I[j], T[j]))):
        tr = InterestTracker(model, split, k=10)
        for j in range(min(200, len(U))): call(tr, j)                       # warm-up
        tr = InterestTracker(model, split, k=10); lat = np.empty(len(U))
        t0 = time.perf_counter()
        for j in range(len(U)):
            s = time.perf_counter(); call(tr, j); lat[j] = time.perf_counter() - s
        wall = time.perf_counter() - t0
        rows.append((name, len(U) / wall, pct(lat, 50), pct(lat, 95), pct(lat, 99)))
    tr = InterestTracker(model, split, k=10); t0 = time.perf_counter(); blat = []
    for b in range(0, len(U), a.batch):
        s = time.perf_counter(); tr.update_many(U[b:b + a.batch], I[b:b + a.batch], T[b:b + a.batch]); blat.append(time.perf_counter() - s)
    wall = time.perf_counter() - t0
    rows.append((f'update_many, batches of {a.batch}', len(U) / wall, pct(blat, 50), pct(blat, 95), pct(blat, 99)))
    print(f"\n| path | events/s | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|")
    for r in rows: print(f"| {r[0]} | {r[1]:,.0f} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} |")
    print("(update_many latencies are per micro-batch, not per event)")
    print(f"\nwork per event: median `update -> top-10 list` latency of the next event of {a.probe_users} users with n prior events each")
    ids = split.item_ids[1:]
    for n in (1, 50, 1000):
        tp = InterestTracker(model, split, k=10); lat = []
        for u in range(a.probe_users):                                       # a history of n distinct-in-turn items, one a minute
            tp.warm_start(u, [ids[(u + j) % len(ids)] for j in range(n)], [1_000_000 + 60 * j for j in range(n)])
        for u in range(a.probe_users):
            s = time.perf_counter(); tp.update(u, ids[(u + n) % len(ids)], 1_000_000 + 60 * n, as_frame=False); lat.append(time.perf_counter() - s)
        print(f"  after {n:>4} prior events: p50 {pct(lat, 50):.3f} ms (repeat window {len(next(iter(tp.states.values())).recent)} items)")
    st = next(iter(tr.states.values()))
    nbytes = sum(x.numel() * x.element_size() for x in (list(st.state) if isinstance(st.state, tuple) else [st.state])) + st.u.numel() * 4
    print(f"\nusers tracked: {len(tr.states)}; tensor bytes per user state: {nbytes}")
    return rows

if __name__ == '__main__': main()
