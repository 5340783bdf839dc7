#!/usr/bin/env python
"""Benchmark of the training loss path (nbs/13_model.ipynb, nbs/16_train.ipynb): seconds per training epoch with the
full (B, T, n_items+1) logits against the chunked softmax cross-entropy that `train_epoch` asks for.

Trains the default `InterestModel` (with its repeat term) on the embedded UCI Online Retail data, one torch thread.
Timing does not depend on the text vectors' values, so they are random 384-d vectors (the MiniLM shape) unless
--minilm is given. Each path runs `--rounds` epochs, alternating, each from the same seeded model; the fastest epoch
of each path is reported (the least disturbed by other processes), with the load average.

    python scripts/bench_ce.py [--rounds 2] [--batch-size 128] [--minilm]
"""
import argparse, os, platform, sys, time
import torch
from interest_llm.data import leave_one_out, make_loader
from interest_llm.datasets import load_embedded
from interest_llm.model import ModelConfig, InterestModel

def epoch(model, loader, return_logits:bool, max_batches:int|None=None) -> float:
    "Seconds for one pass of forward, backward, clip and AdamW step over `loader` (its first `max_batches`)."
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train(); t0 = time.perf_counter()
    for j, b in enumerate(loader):
        if max_batches is not None and j >= max_batches: break
        loss = model(b, return_logits=return_logits)['loss']
        opt.zero_grad(set_to_none=True); loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
    return time.perf_counter() - t0

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rounds', type=int, default=2, help='epochs per path (alternating)')
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--minilm', action='store_true', help='use real MiniLM text vectors (slower start)')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--max-batches', type=int, help='time only this many batches per epoch (a smoke test; default: all)')
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    inter, items = load_embedded()
    split = leave_one_out(inter, n_negatives=0)
    if a.minilm:
        from interest_llm.llm import embed_catalogue
        text = embed_catalogue(split, items, progress=False)
    else:
        torch.manual_seed(0); text = torch.randn(split.n_items + 1, 384); text[0] = 0
    cfg = ModelConfig(n_items=split.n_items, text_dim=text.shape[1])
    loader = make_loader(split, 'train', batch_size=a.batch_size, max_len=cfg.max_len, seed=0)
    n_targets = sum(int((b['targets'] > 0).sum()) for b in loader)
    print(f"$ python {' '.join(sys.argv)}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}; "
          f"{split.n_items} items, {len(loader)} batches of {a.batch_size}, {n_targets} targets per epoch; "
          f"model: {cfg.cell} E={cfg.emb_dim} H={cfg.hidden_dim} Z={cfg.latent_dim}, repeat={cfg.repeat}")
    best = {}
    for r in range(a.rounds):
        for name, full in (('full logits', True), ('chunked CE', False)):
            torch.manual_seed(0); model = InterestModel(cfg, text)
            s = epoch(model, loader, full, a.max_batches)
            best[name] = min(best.get(name, float('inf')), s)
            print(f"round {r}: {name}: {s:.1f} s (load average {os.getloadavg()[0]:.1f})")
    unit = 'epoch' if a.max_batches is None else f'{a.max_batches} batches'
    print(f"\n| loss path | s/{unit} (best of {a.rounds}) |\n|---|---|")
    for k, v in best.items(): print(f"| {k} | {v:.1f} |")
    print(f"\nchunked CE is {best['full logits'] / best['chunked CE']:.2f}x the speed of the full logits")
    return best

if __name__ == '__main__': main()
