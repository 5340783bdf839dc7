#!/usr/bin/env python
"""Training step time of our model and of GRU4Rec with the loss's products in fp32 and in bf16 (`--precision`), on the
main job's data (the bundled Online Retail copy, the CLI's default model), at 1 and 2 torch threads. Writes
benchmarks/precision.md (a section of BENCHMARKS.md).

    python scripts/bench_precision.py            # run it on an otherwise idle machine
    python scripts/bench_precision.py --steps 10 # fewer steps (a smoke run)

Each figure is the fastest of 3 passes of `train_epoch` (the loop `fit` runs) over the same `--steps` training batches, the
two precisions alternating, so that both meet the same machine state.
"""
import argparse, dataclasses, os, time
from pathlib import Path
import torch
from interest_llm import cli, pipeline
from interest_llm.registry import BASELINES
from interest_llm.cleaning import CleaningReport
from interest_llm.data import make_loader
from interest_llm.losses import bf16_native
from interest_llm.train import make_optimizer, train_epoch

OUT = Path(__file__).resolve().parents[1] / 'benchmarks' / 'precision.md'

def step_ms(model, batches, opt, cfg, precision:str) -> float:
    "Mean milliseconds per training step of `train_epoch` (the loop `fit` runs) over `batches`, the loss's products in `precision`."
    t = time.perf_counter()
    train_epoch(model, batches, opt, dataclasses.replace(cfg, precision=precision))
    return (time.perf_counter() - t) / len(batches) * 1000

def measure(steps:int, threads=(1, 2), reps:int=3) -> list:
    args = cli.check_options(cli.resolve(cli.build_parser().parse_args(['train'])))
    inter, items = pipeline.load_data(args, CleaningReport(), lambda *a: None)
    split = pipeline.make_split(inter, 'online-retail')
    text_emb, _ = pipeline.embed_items(args, split, items, lambda *a: None)
    batches = list(make_loader(split, 'train', batch_size=args.batch_size, max_len=args.max_len, shuffle=True, seed=1))[:steps]
    rows = []
    for n in threads:
        torch.set_num_threads(n)
        for name in ('ours', 'gru4rec'):
            torch.manual_seed(0)
            model = pipeline.build_model(args, split, text_emb) if name == 'ours' else BASELINES['gru4rec'](split, text_emb, 0, dim=args.hidden)
            cfg = dataclasses.replace(pipeline.train_config_from(args), progress=False); opt = make_optimizer(model, cfg)
            step_ms(model, batches[:3], opt, cfg, 'fp32')                          # warm-up
            t = {'fp32': [], 'bf16': []}
            for _ in range(reps):
                for p in t: t[p].append(step_ms(model, batches, opt, cfg, p))
            rows.append(dict(model=name, threads=n, fp32=min(t['fp32']), bf16=min(t['bf16'])))
            print(f"{name:8s} {n} thread(s): fp32 {rows[-1]['fp32']:.1f} ms/step, bf16 {rows[-1]['bf16']:.1f} ms/step "
                  f"({rows[-1]['fp32'] / rows[-1]['bf16']:.2f}x)", flush=True)
    return rows

def markdown(rows, steps, load0, load1) -> str:
    L = ['## Loss precision: fp32 and bf16 products', '',
         f"Measured with `python scripts/bench_precision.py` ({time.strftime('%Y-%m-%d %H:%M')} UTC; {os.cpu_count()} CPUs, torch "
         f"{torch.__version__}, native bf16 products here: {'yes' if bf16_native() else 'no'}; load average {load0:.1f} before and "
         f"{load1:.1f} after): milliseconds per training step of `train_epoch` (forward, backward, gradient clipping, AdamW) on the main job's data and model "
         f"(Online Retail, batch 64, windows of 50), fastest of 3 passes over {steps} batches.", '',
         '| model | threads | fp32 ms/step | bf16 ms/step | fp32 / bf16 |', '|---|---:|---:|---:|---:|']
    L += [f"| {r['model']} | {r['threads']} | {r['fp32']:.1f} | {r['bf16']:.1f} | {r['fp32'] / r['bf16']:.2f} |" for r in rows]
    return '\n'.join(L + ['']) + '\n'

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=40, help='training batches per pass (default: 40)')
    ap.add_argument('--out', default=str(OUT), help='markdown file to write (default: benchmarks/precision.md)')
    a = ap.parse_args()
    load0 = os.getloadavg()[0]; rows = measure(a.steps); load1 = os.getloadavg()[0]
    Path(a.out).write_text(markdown(rows, a.steps, load0, load1))
    print(Path(a.out).read_text())
