#!/usr/bin/env python
"""A peer you can run: our split of a data set as RecBole atomic files, and RecBole 1.2.1's own SASRec and GRU4Rec
trained and tested on it, so anyone can repeat the comparison of shared/PEERS.md on their own data.

    python scripts/recbole_peer.py --dataset amazon-office --models SASRec,GRU4Rec --python /path/to/recbole-venv/bin/python
    python scripts/recbole_peer.py --run runs/my-run --models SASRec --python ...   # the split of any run folder
    python scripts/recbole_peer.py --dataset amazon-office --convert-only           # only write the atomic files
    python scripts/recbole_peer.py --dataset amazon-office --report-only            # the .md again (e.g. new rows of ours)

RecBole runs in its own environment (it pins old numpy/pandas): `python -m venv rb && rb/bin/pip install
torch==2.13.0 recbole==1.2.1 'setuptools<81' 'numpy<2' 'pandas<3'`, then pass `--python rb/bin/python`.
The conversion writes `<out>/<name>/<name>.inter` (`user_id:token item_id:token timestamp:float`) with each user's
events in our order and the timestamp = the event's position, so RecBole's chronological leave-one-out
(`split {'LS': 'valid_and_test'}`, `order TO`) holds out exactly our validation and test events. RecBole is run as
shared/PEERS.md describes: full ranking, CE loss without negative sampling, `MAX_ITEM_LIST_LENGTH 50`, batch 2048,
seed 2020, its default model hyper-parameters, validation NDCG@10, `stopping_step 10`, no filtering of users or
items; its autograd anomaly detection (switched on by importing its SINE model) is switched off unless
`--stock`. Figures go to benchmarks/recbole-<name>.json and .md (a section of BENCHMARKS.md), with the command.
"""
import argparse, json, os, re, subprocess, sys, tempfile, time
from pathlib import Path

RUNNER = r'''
import json, sys, time, torch
from recbole.quick_start import run_recbole
import recbole.model.sequential_recommender  # imports SINE, which switches anomaly detection on
cfg = json.loads(sys.argv[1])
stock = cfg.pop('_stock')
if not stock: torch.autograd.set_detect_anomaly(False)
torch.set_num_threads(cfg.pop('_threads'))
t = time.perf_counter()
res = run_recbole(model=cfg.pop('_model'), dataset=cfg['dataset'], config_dict=cfg)
res['seconds'] = time.perf_counter() - t
print('RESULT ' + json.dumps(res, default=float))
'''

def write_atomic(split, name:str, out:Path) -> Path:
    "Our split as `<out>/<name>/<name>.inter`: one row per event, timestamp = position in the user's sequence."
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'{name}.inter'
    with open(path, 'w') as f:
        f.write('user_id:token\titem_id:token\ttimestamp:float\n')
        for u, seq in enumerate(split.seqs):
            if len(seq) < 3: continue         # our split evaluates only users with 3+ events; RecBole would split them
            for t, i in enumerate(seq): f.write(f'{split.users[u]}\t{split.item_ids[i]}\t{t}\n')
    return path

def recbole_config(name:str, data_path:Path, model:str, epochs:int, threads:int, stock:bool) -> dict:
    return dict(_model=model, _threads=threads, _stock=stock, dataset=name, data_path=str(data_path),
                USER_ID_FIELD='user_id', ITEM_ID_FIELD='item_id', TIME_FIELD='timestamp',
                load_col={'inter': ['user_id', 'item_id', 'timestamp']}, MAX_ITEM_LIST_LENGTH=50,
                eval_args={'split': {'LS': 'valid_and_test'}, 'order': 'TO', 'mode': 'full', 'group_by': 'user'},
                train_neg_sample_args=None, loss_type='CE', metrics=['Hit', 'NDCG', 'MRR'], topk=[10, 20],
                valid_metric='NDCG@10', train_batch_size=2048, eval_batch_size=4096, seed=2020, stopping_step=10,
                epochs=epochs, user_inter_num_interval='[0,inf)', item_inter_num_interval='[0,inf)',
                checkpoint_dir=str(data_path / 'saved'), show_progress=False)

def log_epochs(log:Path) -> dict:
    "Epochs run and the best epoch (RecBole counts from 0), read from RecBole's log file."
    text = log.read_text(errors='replace')
    best = re.search(r'best eval result in epoch (\d+)', text)
    return dict(epochs_run=len(re.findall(r'epoch \d+ training \[', text)), best_epoch=int(best.group(1)) if best else None)

def run_model(python:str, cfg:dict) -> dict:
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')       # its checkpoints pickle its Config object
    folder = Path(cfg['data_path'])                                      # RecBole logs to ./log: keep it there
    p = subprocess.run([python, '-c', RUNNER, json.dumps(cfg)], capture_output=True, text=True, env=env, cwd=folder)
    line = next((l for l in p.stdout.splitlines() if l.startswith('RESULT ')), None)
    if p.returncode != 0 or line is None:
        sys.exit(f"RecBole {cfg['_model']} failed (exit {p.returncode}):\n{(p.stderr or p.stdout)[-3000:]}")
    logs = sorted((folder / 'log' / cfg['_model']).glob('*.log'), key=lambda f: f.stat().st_mtime)
    return dict(json.loads(line[7:]), **(log_epochs(logs[-1]) if logs else {}))

def load_split(a):
    "The split `interest-llm train` makes of the data set (or a run folder's), and its name."
    from interest_llm.data import SplitData
    if a.run: return SplitData.load(Path(a.run) / 'split'), Path(a.run).name
    from interest_llm.cli import build_parser, resolve, run_config
    from interest_llm.pipeline import prepare_data
    argv = ['train', '--dataset', a.dataset] + (['--data-dir', a.data_dir] if a.data_dir else [])
    return prepare_data(run_config(resolve(build_parser().parse_args(argv))), log=lambda line: None).split, a.dataset

def markdown(res:dict, rows:list=()) -> str:
    L = [f"## RecBole 1.2.1 on our split ({res['name']})", '',
         f"Command: `{res['command']}` ({res['finished']} UTC): our split of {res['name']} as RecBole atomic files "
         f"({res['users']} users, {res['events']} events), RecBole's own models with its default hyper-parameters, full "
         "ranking, CE loss, batch 2048, seed 2020, validation NDCG@10, `stopping_step 10`"
         + (", stock settings (autograd anomaly detection on)" if res['stock'] else ", autograd anomaly detection off")
         + f", {res['threads']} thread{'s' if res['threads'] != 1 else ''}, at most {res['epochs']} epochs.", '',
         '| model | test NDCG@10 | test HR@10 | test MRR@10 | test NDCG@20 | valid NDCG@10 | epochs (best, from 0) | seconds |',
         '|---|---:|---:|---:|---:|---:|---:|---:|']
    for m, r in res['models'].items():
        t, v = r['test_result'], r['best_valid_result']
        L.append(f"| {m} | {t['ndcg@10']:.4f} | {t['hit@10']:.4f} | {t['mrr@10']:.4f} | {t['ndcg@20']:.4f} | "
                 f"{v['ndcg@10']:.4f} | {r.get('epochs_run', '?')} ({r.get('best_epoch', '?')}) | {r['seconds']:.0f} |")
    return '\n'.join(L + [''] + ours_beside(res, rows)) + '\n'

OURS = {'SASRec': 'sasrec', 'GRU4Rec': 'gru4rec'}   # RecBole's model -> our implementation of it

def ours_beside(res:dict, rows:list) -> list:
    "Lines: our implementations of the same models on the same split (benchmark rows), beside RecBole's."
    L = []
    for m, r in res['models'].items():
        mine = [x for x in rows if x['dataset'] == res['name'] and x['model'] == OURS.get(m)]
        if not mine: continue
        nd = sum(x['test']['ndcg@10'] for x in mine) / len(mine)
        hr = sum(x['test']['hr@10'] for x in mine) / len(mine)
        theirs = r['test_result']['ndcg@10']
        L.append(f"- Ours: `{OURS[m]}` on the same split, seeds {','.join(str(x['seed']) for x in mine)} "
                 f"(BENCHMARKS.md, {res['name']}): test NDCG@10 {nd:.4f}, HR@10 {hr:.4f}; "
                 f"{nd / theirs:.2f} x RecBole's {m} ({'at least' if nd >= theirs else 'below'} it).")
    return L + ([''] if L else [])

def _public(argv:list) -> list:
    "The command as readers should see it: RecBole's Python as a placeholder, no temporary folder."
    out, i = [], 0
    while i < len(argv):
        x = argv[i]
        if x in ('--python', '--out'):
            out += ['--python', 'RECBOLE_PYTHON'] if x == '--python' else []
            i += 2
            continue
        if x.startswith('--python='): out.append('--python=RECBOLE_PYTHON')
        elif not x.startswith('--out='): out.append(x)
        i += 1
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--dataset', help='a data set name of `interest-llm train --dataset`')
    src.add_argument('--run', help='a run folder: its split.npz')
    ap.add_argument('--data-dir', default=None)
    ap.add_argument('--models', default='SASRec,GRU4Rec')
    ap.add_argument('--python', help="the Python of RecBole's environment (see above)")
    ap.add_argument('--epochs', type=int, default=300, help="RecBole's epochs cap (early stopping usually ends first)")
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--stock', action='store_true', help="keep RecBole's autograd anomaly detection on")
    ap.add_argument('--out', default=None, help='folder for the atomic files (default: a temporary one)')
    ap.add_argument('--results', default='benchmarks', help='folder of recbole-<name>.json/.md')
    ap.add_argument('--convert-only', action='store_true')
    ap.add_argument('--report-only', action='store_true', help='rewrite recbole-<name>.md from its .json (and our rows)')
    a = ap.parse_args()
    bench = Path(a.results) / 'results.json'
    rows = json.loads(bench.read_text()) if bench.exists() else []
    if a.report_only:
        base = Path(a.results) / f'recbole-{a.dataset or Path(a.run).name}'
        base.with_suffix('.md').write_text(markdown(json.loads(base.with_suffix('.json').read_text()), rows))
        return print(base.with_suffix('.md').read_text())
    if not a.convert_only and not a.python: sys.exit("--python: the Python of RecBole's environment is needed (see --help)")
    split, name = load_split(a)
    out = Path(a.out or tempfile.mkdtemp(prefix='recbole-'))
    path = write_atomic(split, name, out)
    n_users = sum(len(s) >= 3 for s in split.seqs)
    n_events = sum(len(s) for s in split.seqs if len(s) >= 3)
    print(f"{path}: {n_users} users, {n_events} events")
    if a.convert_only: return
    res = dict(name=name, users=n_users, events=n_events, stock=a.stock, threads=a.threads, epochs=a.epochs,
               command='python scripts/recbole_peer.py ' + ' '.join(_public(sys.argv[1:])), models={})
    for m in a.models.split(','):
        print(f"RecBole {m} ...", flush=True)
        res['models'][m] = run_model(a.python, recbole_config(name, out, m, a.epochs, a.threads, a.stock))
        print(f"  test ndcg@10 {res['models'][m]['test_result']['ndcg@10']:.4f}", flush=True)
    res['finished'] = time.strftime('%Y-%m-%d %H:%M')
    base = Path(a.results) / f'recbole-{name}'
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix('.json').write_text(json.dumps(res, indent=1, default=float) + '\n')
    base.with_suffix('.md').write_text(markdown(res, rows))
    print(markdown(res, rows))

if __name__ == '__main__':
    main()
