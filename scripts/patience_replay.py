#!/usr/bin/env python
"""What a smaller early-stopping patience would have chosen, replayed from finished runs' validation histories.

    python scripts/patience_replay.py runs/benchmark/amazon-office/*/metrics.json --patience 3 4

A run's trajectory up to its stop does not depend on the patience (the plateau schedule has its own, fixed patience of 0),
so the epoch that patience p would have stopped at, and the best validation epoch it would have kept, follow from the
history `interest-llm train` writes to metrics.json. Only runs trained with a larger patience can be replayed.
"""
import argparse, json
from pathlib import Path

def replay(history:list, patience:int, metric:str='ndcg@10') -> tuple:
    "(epoch it stops at, best epoch, best validation value) under early stopping with `patience`."
    best, bad, best_ep = float('-inf'), 0, 0
    for h in history:
        v = h['valid'][metric]
        if v > best: best, bad, best_ep = v, 0, h['epoch']
        else: bad += 1
        if bad >= patience: return h['epoch'], best_ep, best
    return history[-1]['epoch'], best_ep, best

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('metrics', nargs='+', help='metrics.json files of finished `interest-llm train` runs')
    ap.add_argument('--patience', type=int, nargs='+', default=[3], help='patience values to replay (default: 3)')
    a = ap.parse_args()
    same = {p: 0 for p in a.patience}; n = 0
    print('| run | patience it ran with: stop, best epoch, valid | ' + ' | '.join(f'patience {p}: stop, best epoch, valid' for p in a.patience) + ' |')
    print('|---|---|' + '---|' * len(a.patience))
    for f in a.metrics:
        m = json.loads(Path(f).read_text()); h, P = m.get('history'), m['train_config']['patience']
        if not h: continue
        ran = replay(h, P)
        cells = []
        for p in a.patience:
            if p > P: cells.append('—'); continue
            r = replay(h, p); same[p] += r[1] == ran[1]
            cells.append(f"{r[0]}, {r[1]}, {r[2]:.4f}" + ('' if r[1] == ran[1] else ' (differs)'))
        n += 1
        print(f"| {m['dataset']} {m['model']} seed {m['seed']} | {ran[0]}, {ran[1]}, {ran[2]:.4f} (patience {P}) | " + ' | '.join(cells) + ' |')
    print('\n' + '; '.join(f"patience {p} keeps the same best epoch in {same[p]} of {n} runs" for p in a.patience))
