"""End-to-end tests of the `interest-llm` command (quick configurations: seconds, not minutes): the run folder and its
contract, every command, what a new user meets on their own file (progress lines in a log file, `--device`, positions
as timestamps), and bad input: every refusal is one line `interest-llm: error: ...` with exit status 2 naming the
file, column or option and the fix, before any data is read where the option alone is wrong."""
import contextlib, io, json, os, re, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from interest_llm.cli import main, build_parser, CLIError
from interest_llm.pipeline import pick_device
from interest_llm.data import SplitData
from interest_llm.runs import partial_dir
from cli_helpers import QUICK, T0, ITEMS, cli, refused, write_csv, log_rows, train_on_awkward_ids

CLI = [sys.executable, '-c', 'from interest_llm.cli import main; main()']

@pytest.fixture(scope='module')
def tiny_llm(tmp_path_factory):
    "A tiny random BERT with an offline tokenizer, so the tests do not depend on MiniLM's speed."
    from interest_llm.llm import make_tiny_model
    return str(make_tiny_model(tmp_path_factory.mktemp('llm') / 'tiny'))

@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    d = tmp_path_factory.mktemp('cache'); old = os.environ.get('INTEREST_LLM_CACHE')
    os.environ['INTEREST_LLM_CACHE'] = str(d); yield d
    if old is None: os.environ.pop('INTEREST_LLM_CACHE', None)
    else: os.environ['INTEREST_LLM_CACHE'] = old

@pytest.fixture(scope='module')
def run(tmp_path_factory, tiny_llm, cache):
    out = tmp_path_factory.mktemp('runs') / 'sim'
    m = main(['train', '--dataset', 'simulated', '--quick', '--llm-model', tiny_llm, '--baselines', 'pop,markov',
              '--out', str(out), '--seed', '3'])
    return out, m

def test_run_folder_and_metrics_contract(run):
    out, m = run
    files = set(os.listdir(out))
    assert {'model.safetensors', 'config.json', 'metrics.json', 'report.md', 'learning_curves.png', 'split.npz',
            'split.json', 'items.csv.gz', 'checkpoints'} <= files
    js = json.loads((out / 'metrics.json').read_text())
    assert {'dataset', 'protocol', 'model', 'seed', 'valid', 'test', 'baselines', 'timing', 'peak_rss_mb'} <= set(js)
    assert js['dataset'] == 'simulated' and js['model'] == 'ours' and js['seed'] == 3
    assert {'hr@10', 'ndcg@10', 'mrr@10', 'hr@20', 'ndcg@20'} <= set(js['test']) and 'ndcg@10' in js['valid']
    assert set(js['baselines']) == {'pop', 'markov'} and 'ndcg@10' in js['baselines']['pop']['test']
    assert {'train_s_per_epoch', 'eval_s'} <= set(js['timing']) and js['peak_rss_mb'] > 0
    assert 0 <= js['test']['ndcg@10'] <= js['test']['hr@10'] <= 1
    assert {'masked', 'sampled-100-uniform', 'classification'} <= set(js['test'])
    rep = (out / 'report.md').read_text()
    assert 'pessimistically' in rep and '| pop |' in rep and 'learning_curves.png' in rep
    assert not any(f.endswith(('.pt', '.pth', '.pkl', '.bin')) for f in os.listdir(out / 'checkpoints'))

def test_evaluate_reproduces_test_metrics(run):
    out, m = run
    ev = main(['evaluate', str(out)])
    assert ev['ndcg@10'] == pytest.approx(m['test']['ndcg@10'], abs=1e-9)
    assert (out / 'eval-test.json').exists()

def test_recommend_user_items_texts(run, capsys):
    out, _ = run
    from interest_llm.data import SplitData
    split = SplitData.load(out / 'split')
    df = main(['recommend', str(out), '--user', str(split.users[0]), '-k', '4', '--json'])
    assert len(df) == 4 and df['item'].isin(split.item_ids[1:]).all() and df['score'].is_monotonic_decreasing
    assert json.loads(capsys.readouterr().out)[0]['rank'] == 1
    items = pd.read_csv(out / 'items.csv.gz', dtype=str)
    df2 = main(['recommend', str(out), '--items', ','.join(split.item_ids[1:3]), '-k', '3', '--exclude-seen'])
    assert not set(df2['item']) & set(split.item_ids[1:3])
    df3 = main(['recommend', str(out), '--texts', items['text'][0].upper(), '-k', '2'])   # case-insensitive match
    assert len(df3) == 2

def test_recommend_errors(run, capsys):
    out, _ = run
    with pytest.raises(SystemExit) as e: main(['recommend', str(out), '--user', 'nobody'])
    assert e.value.code == 2 and "unknown user 'nobody'" in capsys.readouterr().err
    with pytest.raises(SystemExit): main(['recommend', str(out), '--items', 'no-such-item'])
    assert "unknown item id(s) ['no-such-item']" in capsys.readouterr().err

def test_recommend_free_text_uses_text_pathway(run):
    out, _ = run
    df = main(['recommend', str(out), '--texts', 'a brand new camera bag', 'vintage hiking boots', '-k', '3'])
    assert len(df) == 3 and df['rank'].tolist() == [1, 2, 3]

def test_refuses_to_overwrite_finished_run(run, capsys):
    out, _ = run
    with pytest.raises(SystemExit): main(['train', '--dataset', 'simulated', '--quick', '--no-llm', '--out', str(out)])
    assert 'already holds a finished run' in capsys.readouterr().err

def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as e: main(['train', '--help'])
    assert e.value.code == 0
    h = capsys.readouterr().out
    for opt in ['--dataset', '--data-dir', '--interactions', '--items', '--user-col', '--item-col', '--time-col', '--text-col',
                '--seed', '--epochs', '--batch-size', '--lr', '--hidden', '--latent', '--cell', '--no-llm', '--no-vae', '--no-time',
                '--baselines', '--max-len', '--threads', '--quick', '--out', '--resume', 'INTEREST_LLM_DATA']:
        assert opt in h, opt
    for cmd in ['train', 'evaluate', 'recommend', 'embed', 'benchmark']:
        with pytest.raises(SystemExit): main([cmd, '--help'])
        assert 'usage: interest-llm ' + cmd in capsys.readouterr().out

def test_bad_arguments(capsys, monkeypatch, tmp_path):
    with pytest.raises(SystemExit) as e: main(['train', '--dataset', 'movielens'])
    assert e.value.code == 2 and "invalid choice: 'movielens'" in capsys.readouterr().err
    monkeypatch.delenv('INTEREST_LLM_DATA', raising=False)
    with pytest.raises(SystemExit) as e: main(['train', '--dataset', 'ml-100k', '--quick'])
    assert e.value.code == 2 and 'INTEREST_LLM_DATA' in capsys.readouterr().err
    with pytest.raises(SystemExit): main(['train', '--dataset', 'ml-100k', '--data-dir', str(tmp_path / 'nope')])
    assert 'not a directory' in capsys.readouterr().err
    with pytest.raises(SystemExit): main(['train', '--interactions', str(tmp_path / 'missing.csv'), '--quick'])
    assert 'does not exist' in capsys.readouterr().err
    with pytest.raises(SystemExit): main(['train', '--dataset', 'simulated', '--quick', '--no-llm', '--baselines', 'magic', '--epochs', '1', '--out', str(tmp_path / 'r')])
    assert "unknown baseline(s) ['magic']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e: main(['train', '--epochs', 'many'])
    assert e.value.code == 2 and "invalid int value: 'many'" in capsys.readouterr().err

def test_generic_file_with_column_mapping(tmp_path, tiny_llm, cache):
    rng = np.random.default_rng(0)
    rows = [(f'c{u}', f'sku{(u + t) % 30}', f'2021-03-{1 + t:02d} 10:00') for u in range(40) for t in range(int(rng.integers(4, 12)))]
    pd.DataFrame(rows, columns=['customer', 'sku', 'when']).to_csv(tmp_path / 'log.csv', index=False)
    pd.DataFrame({'sku': [f'sku{i}' for i in range(30)], 'title': [f'red mug number {i}' for i in range(30)]}).to_csv(tmp_path / 'items.csv', index=False)
    m = main(['train', '--interactions', str(tmp_path / 'log.csv'), '--items', str(tmp_path / 'items.csv'), '--user-col', 'customer',
              '--item-col', 'sku', '--time-col', 'when', '--text-col', 'title', '--quick', '--llm-model', tiny_llm,
              '--baselines', 'none', '--out', str(tmp_path / 'run')])
    assert m['dataset'] == 'log' and m['data']['n_users'] == 40 and m['baselines'] == {}   # named after the file
    with pytest.raises(SystemExit): main(['train', '--interactions', str(tmp_path / 'log.csv'), '--user-col', 'client', '--quick'])

def test_embed(tmp_path, tiny_llm, cache):
    info = main(['embed', '--dataset', 'simulated', '--llm-model', tiny_llm, '--out', str(tmp_path / 'e.safetensors')])
    from safetensors.torch import load_file
    e = load_file(str(tmp_path / 'e.safetensors'))['text_emb']
    assert e.shape[0] == len(info['item_ids']) and info['item_ids'][0] == '<pad>' and float(e[0].abs().sum()) == 0

def test_console_entry_point(tmp_path):
    "The module entry point runs as a separate process (the `interest-llm` script when installed)."
    exe = shutil.which('interest-llm')
    cmd = [exe] if exe else [sys.executable, '-c', 'from interest_llm.cli import main; main()']
    p = subprocess.run(cmd + ['--help'], capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)})
    assert p.returncode == 0 and 'benchmark' in p.stdout
    if exe:                                                 # sys.exit(main()): success must exit with status 0, silently
        p = subprocess.run([exe, 'train', '--dataset', 'simulated', '--quick', '--no-llm', '--baselines', 'none', '--epochs', '1',
                            '--out', str(tmp_path / 'r')], capture_output=True, text=True)
        assert p.returncode == 0 and (tmp_path / 'r' / 'metrics.json').exists() and "{'dataset'" not in p.stderr
    p = subprocess.run(cmd + ['train', '--dataset', 'nope'], capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)})
    assert p.returncode == 2 and 'invalid choice' in p.stderr

def test_test_ranks_agree_with_metrics(run):
    "test_ranks.csv.gz (what paired bootstraps read) gives back the reported test metrics exactly."
    from interest_llm.metrics import metrics_from_ranks
    out, m = run
    r = pd.read_csv(out / 'test_ranks.csv.gz', dtype={'user_id': str, 'target': str})
    assert len(r) == m['data']['n_eval_users'] and r['rank'].min() >= 1
    got = metrics_from_ranks(r['rank'].to_numpy(), (10, 20))
    for k in ('hr@10', 'ndcg@10', 'mrr@10', 'ndcg@20'): assert got[k] == pytest.approx(m['test'][k], abs=1e-9), k

def test_vae_and_schedule_options_reach_the_configs(tmp_path, tiny_llm, cache):
    m = main(['train', '--dataset', 'simulated', '--quick', '--llm-model', tiny_llm, '--baselines', 'gru4rec', '--hidden', '12',
              '--free-bits', '0.25', '--kl-warmup', '3', '--scheduler', 'cosine', '--loss', 'bce', '--n-neg', '7', '--out', str(tmp_path / 'r')])
    assert m['model_config']['free_bits'] == 0.25 and m['model_config']['hidden_dim'] == 12
    assert m['model_config']['loss'] == 'bce' and m['model_config']['n_neg'] == 7
    assert m['train_config']['kl_warmup'] == 3 and m['train_config']['scheduler'] == 'cosine'
    assert 'ndcg@10' in m['baselines']['gru4rec']['test']

def test_precision_option_reaches_training_and_metrics(tmp_path, tiny_llm, cache, monkeypatch):
    "--precision is checked by argparse, reaches TrainConfig, and metrics.json records what `auto` meant on this device."
    import interest_llm.losses as M
    from interest_llm.losses import bf16_native
    seen = []
    orig = M.FusedCE.apply
    monkeypatch.setattr(M.FusedCE, 'apply', lambda *a: seen.append((a[1].shape[1], a[-1])) or orig(*a))   # (item width, low dtype: None = fp32)
    for prec, want in (('fp32', 'fp32'), ('bf16', 'bf16'), ('auto', 'bf16' if bf16_native() else 'fp32')):
        seen.clear()
        m = main(['train', '--dataset', 'simulated', '--quick', '--llm-model', tiny_llm, '--baselines', 'gru4rec', '--precision', prec,
                  '--hidden', '12', '--baseline-process', 'off', '--out', str(tmp_path / prec)])   # GRU4Rec in this process, where `seen` sees it
        assert m['train_config']['precision'] == prec and m['precision'] == want
        assert set(seen) == {(w, None if want == 'fp32' else M.torch.bfloat16) for w in (16, 12)}   # ours (E = 16) and GRU4Rec (width 12) alike
    with pytest.raises(SystemExit) as e: main(['train', '--precision', 'fp16'])
    assert e.value.code == 2

def test_neural_baselines_train_in_a_second_process(tmp_path, tiny_llm, cache):
    "With 2+ threads the neural baselines train in a spawned process on one thread: the same numbers as a 1-thread serial run."
    base = ['train', '--dataset', 'simulated', '--quick', '--llm-model', tiny_llm, '--baselines', 'gru4rec,pop']
    par = main(base + ['--threads', '2', '--out', str(tmp_path / 'par')])
    ser = main(base + ['--threads', '1', '--out', str(tmp_path / 'ser')])
    off = main(base + ['--threads', '2', '--baseline-process', 'off', '--out', str(tmp_path / 'off')])
    assert par['baseline_process']['baselines'] == ['gru4rec'] and par['baseline_process']['peak_rss_mb'] > 0
    assert ser['baseline_process'] is None and off['baseline_process'] is None
    assert list(par['baselines']) == ['gru4rec', 'pop'] == list(ser['baselines'])          # the order of --baselines
    assert par['baselines']['gru4rec']['test'] == ser['baselines']['gru4rec']['test']      # one thread in both: identical
    assert par['threads'] == off['threads'] == 2 and ser['threads'] == 1

def test_a_failing_baseline_process_is_a_clear_error(tiny_llm):
    "An exception inside the baseline process comes back as an error naming it (`train` prints it in one line)."
    from interest_llm.cli import resolve, run_config
    from interest_llm.pipeline import run_baselines
    from interest_llm.runs import SideProcess, SideProcessError
    from interest_llm.data import leave_one_out
    from interest_llm.simulate import simulate_drift
    split = leave_one_out(simulate_drift(n_users=30, n_items=80, seed=0)[0], seed=0, n_negatives=0)
    args = resolve(build_parser().parse_args(['train', '--quick', '--hidden', '-4']))   # a negative width fails inside the process
    process = SideProcess(run_baselines, (run_config(args), split, None), dict(names=['gru4rec']), lambda line: None)
    with pytest.raises(SideProcessError, match='Error'): process.join()

def test_baselines_take_the_width_of_our_model():
    from interest_llm.pipeline import baseline_kwargs
    a = build_parser().parse_args(['train', '--hidden', '96', '--dropout', '0.3'])
    assert baseline_kwargs(a, 'gru4rec') == dict(dim=96, dropout=0.3) and baseline_kwargs(a, 'sasrec')['dim'] == 96
    assert baseline_kwargs(a, 'markov') == {} and baseline_kwargs(a, 'mlp_article') == {}

def test_two_benchmark_processes_share_one_results_file(tmp_path, tiny_llm, cache):
    "Rows finished by concurrent `benchmark` processes all land in the shared results file (it is locked per write)."
    res, md = tmp_path / 'results.json', tmp_path / 'B.md'
    cmd = [sys.executable, '-c', 'from interest_llm.cli import main; main()', 'benchmark', '--dataset', 'simulated',
           '--seeds', '0,1', '--results', str(res), '--markdown', str(md), '--runs', str(tmp_path / 'runs')]
    extra = ['--', '--quick', '--llm-model', tiny_llm]
    env = dict(os.environ, INTEREST_LLM_CACHE=str(cache))
    ps = [subprocess.Popen(cmd + ['--models', m] + extra, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
          for m in ('pop,markov', 'itemknn,ours')]
    outs = [p.communicate(timeout=600)[0] for p in ps]
    assert all(p.returncode == 0 for p in ps), outs
    rows = json.loads(res.read_text())
    # the deterministic baselines run once (seed 0), ours once per seed
    assert sorted((r['model'], r['seed']) for r in rows) == sorted([('pop', 0), ('markov', 0), ('itemknn', 0), ('ours', 0), ('ours', 1)])
    assert all(len(r['test_ranks']) == len(rows[0]['test_ranks']) and r['test_users_sha1'] == rows[0]['test_users_sha1'] for r in rows)
    # every row labels its test users for the group tables: training events and long-tail targets, user by user
    from interest_llm.data import SplitData
    from interest_llm.evaluate import user_groups
    run = next((tmp_path / 'runs' / 'simulated').glob('ours-seed0-*'))
    split, ranks = SplitData.load(run / 'split'), pd.read_csv(run / 'test_ranks.csv.gz', dtype={'user_id': str})
    g = user_groups(split, [list(map(str, split.users)).index(u) for u in ranks['user_id']])
    ours0 = next(r for r in rows if r['model'] == 'ours' and r['seed'] == 0)
    assert ours0['test_train_events'] == g.train_events.tolist() and ours0['test_tail'] == g.long_tail.astype(int).tolist()
    assert all(r['test_train_events'] == ours0['test_train_events'] for r in rows)
    text = md.read_text()
    assert '## simulated' in text and 'Paired bootstrap: ours against each model' in text and '| markov | 0 |' in text
    assert '| markov | 0,1 | ' in text.split('Paired bootstrap')[1]          # paired with ours averaged over both seeds

@pytest.mark.parametrize('name', ['gru4rec', 'markov'])
def test_train_a_baseline_as_the_model(tmp_path, tiny_llm, cache, name):
    "`train --model <baseline>` (what every benchmark row of a baseline runs) writes the whole run folder."
    out = tmp_path / name
    m = main(['train', '--dataset', 'simulated', '--quick', '--llm-model', tiny_llm, '--model', name, '--baselines', 'none', '--out', str(out)])
    assert m['model'] == name and {'metrics.json', 'report.md', 'test_ranks.csv.gz'} <= set(os.listdir(out))
    assert f'| {name} |' in (out / 'report.md').read_text()
    if name == 'gru4rec': assert m['timing']['epochs_run'] >= 1 and m['timing']['time_to_best_s'] > 0
    masked = m['test']['masked']                       # the masked protocol too, as for our model (BENCHMARKS' masked column)
    assert set(masked) >= {'ndcg@10', 'hr@10'} and masked['hr@10'] >= m['test']['hr@10']   # removing seen items only lifts the target

def write_ml1m(d, users=30, items=40, per_user=15, seed=0):
    "A synthetic ml-1m in the real files' format ('::'-separated, latin-1), since the shared data has no ml-1m."
    rng = np.random.default_rng(seed); d.mkdir(parents=True)
    genres = ['Action', 'Comedy', 'Drama', "Children's", 'Film-Noir']
    (d / 'movies.dat').write_bytes('\n'.join(f"{i}::Film {i} à la carte ({1950 + i})::{'|'.join(rng.choice(genres, 2, replace=False))}"
                                             for i in range(1, items + 1)).encode('latin-1'))
    (d / 'ratings.dat').write_text('\n'.join(f"{u}::{i}::{rng.integers(1, 6)}::{978300000 + 3600 * u + 60 * k}"
                                             for u in range(1, users + 1) for k, i in enumerate(rng.choice(np.arange(1, items + 1), per_user, replace=False))))

@pytest.mark.parametrize('name', ['ml-100k', 'ml-latest-small', 'ml-100k-recbole', 'online-retail-raw', 'amazon-office', 'ml-1m'])
def test_train_on_each_named_dataset(name, tmp_path, tiny_llm, cache, request):
    "`train --dataset <name> --data-dir <folder>` runs end to end on every named data set (quick profile: 200 users, 2 epochs)."
    if name == 'ml-1m': d = tmp_path / 'data'; write_ml1m(d / 'ml-1m')
    else: d = request.getfixturevalue('data_dir')          # the shared real data (skips when absent)
    out = tmp_path / 'run'
    m = main(['train', '--dataset', name, '--data-dir', str(d), '--quick', '--llm-model', tiny_llm, '--baselines', 'pop',
              '--out', str(out), '--no-progress'])
    js = json.loads((out / 'metrics.json').read_text())
    assert js['dataset'] == m['dataset'] == name and 'pop' in js['baselines']
    assert 0 <= js['test']['ndcg@10'] <= js['test']['hr@10'] <= 1 and js['valid']['ndcg@10'] >= 0
    users = pd.read_csv(out / 'test_ranks.csv.gz', dtype={'user_id': str}).user_id
    assert 0 < users.nunique() == len(users) <= (30 if name == 'ml-1m' else 200)


# ------------------------------------------------------------------------------------------------ a new user on their own file (log file, --device, positions)



@pytest.fixture(scope='module')
def shop(tmp_path_factory):
    "A generic log whose timestamps are each user's positions 0, 1, 2, ..., and its item table."
    d = tmp_path_factory.mktemp('shop')
    rng, rows = np.random.default_rng(0), []
    for u in range(120):
        rows += [(f"u{u}", f"i{rng.integers(0, 60)}", t) for t in range(int(rng.integers(5, 15)))]
    pd.DataFrame(rows, columns=['user', 'item', 'timestamp']).to_csv(d / 'shop_events.csv', index=False)
    pd.DataFrame({'item': [f"i{i}" for i in range(60)], 'text': [f"mug number {i}, colour {i % 5}" for i in range(60)]}).to_csv(d / 'shop_items.csv', index=False)
    return d

def _run(args, cwd, env_extra=None):
    "The CLI as a script with stdout to a file (not a terminal), as a user's log."
    env = dict(os.environ, **(env_extra or {}))
    log = Path(cwd) / 'out.log'
    with open(log, 'w') as f: p = subprocess.run(CLI + args, cwd=cwd, stdout=f, stderr=subprocess.PIPE, text=True, env=env)
    return p, log.read_text()

def test_log_file_gets_progress_lines_positions_detected_and_file_name(shop, tiny_llm, tmp_path):
    p, out = _run(['train', '--interactions', str(shop / 'shop_events.csv'), '--items', str(shop / 'shop_items.csv'), '--quick',
                   '--llm-model', tiny_llm, '--baselines', 'gru4rec', '--epochs', '3', '--patience', '3', '--seed', '2'],
                  tmp_path, dict(INTEREST_LLM_CACHE=str(tmp_path / 'cache')))
    assert p.returncode == 0, p.stderr
    lines = out.splitlines()
    # one line per stage, with the elapsed time; text vectors embedded afresh (empty cache) are reported as they go
    assert any(l.startswith('data: shop_events:') and 'elapsed' in l and 'device cpu' in l for l in lines), out
    assert any(l.startswith('text vectors: 60/60 new texts embedded') for l in lines), out
    # one line per epoch of ours and of the neural baseline, with elapsed time and what is left
    ours = [l for l in lines if l.startswith('epoch ')]
    base = [l for l in lines if l.startswith('baseline gru4rec epoch ')]
    assert len(ours) == 3 and len(base) == 3, out
    assert all('elapsed' in l for l in ours + base) and 'left:' in ours[0] and 'last epoch' in ours[-1]
    # positions are not Unix seconds: said once, and the time features are off
    note = [l for l in lines if 'look like positions' in l]
    assert len(note) == 1 and 'time features are turned off' in note[0], out
    runs = list((tmp_path / 'runs').iterdir())
    assert len(runs) == 1 and runs[0].name.startswith('shop_events-'), runs
    m = json.loads((runs[0] / 'metrics.json').read_text())
    assert m['dataset'] == 'shop_events' and m['model_config']['use_time'] is False and m['data']['positional_time']
    assert m['model_config']['neg_seed'] == 2                     # the model's sampler seed is --seed, and named for what it is
    assert '# Run report: ours-no-time on shop_events' in (runs[0] / 'report.md').read_text()

def test_real_timestamps_keep_time_features(tmp_path):
    m = main(['train', '--dataset', 'simulated', '--quick', '--no-llm', '--baselines', 'none', '--out', str(tmp_path / 'r')])
    assert m['model_config']['use_time'] is True and m['data']['positional_time'] is None

def test_sasrec_alone_embeds_nothing(shop, tmp_path):
    p, out = _run(['train', '--interactions', str(shop / 'shop_events.csv'), '--items', str(shop / 'shop_items.csv'), '--quick',
                   '--model', 'sasrec', '--baselines', 'none', '--epochs', '2', '--llm-model', '/nonexistent/encoder'], tmp_path)
    assert p.returncode == 0, p.stderr                             # the (absent) encoder is never loaded
    assert 'text vectors' not in out and out.count('epoch ') == 2, out

def test_device_cpu_and_auto(tmp_path, monkeypatch):
    m = main(['train', '--dataset', 'simulated', '--quick', '--no-llm', '--baselines', 'none', '--device', 'cpu', '--out', str(tmp_path / 'c')])
    assert m['test']['ndcg@10'] >= 0
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    if getattr(torch.backends, 'mps', None) is not None: monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: False)
    assert pick_device('auto') == torch.device('cpu')             # no GPU here: auto takes the CPU
    with pytest.raises(CLIError, match='no CUDA GPU'): pick_device('cuda')
    with pytest.raises(CLIError, match='MPS'): pick_device('mps')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert pick_device('auto') == torch.device('cuda')            # and a GPU when torch sees one

@pytest.mark.parametrize('cmd', ['train', 'evaluate', 'recommend', 'embed'])
def test_device_option_everywhere_and_checked_first(cmd, tmp_path, capsys):
    extra = {'train': [], 'evaluate': [str(tmp_path)], 'recommend': [str(tmp_path), '--user', 'x'], 'embed': ['--out', str(tmp_path / 'v.safetensors')]}[cmd]
    with pytest.raises(SystemExit) as e: main([cmd, *extra, '--device', 'tpu'])
    assert e.value.code == 2 and "--device 'tpu'" in capsys.readouterr().err



# ------------------------------------------------------------------------------------------------ bad input: options first, files, dates, cleaning


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A finished run on ids that need care (`cli_helpers.train_on_awkward_ids`)."
    return train_on_awkward_ids(tmp_path_factory.mktemp('trained'))

@pytest.mark.parametrize('opt, val, msg', [
    ('--epochs', '0', '--epochs must be an integer >= 1, got 0'), ('--batch-size', '0', '--batch-size must be an integer >= 1'),
    ('--lr', '-0.01', '--lr must be a finite number > 0'), ('--lr', 'nan', '--lr must be a finite number > 0, got nan'),
    ('--dropout', '2', '--dropout must be in [0, 1)'), ('--hidden', '0', '--hidden must be an integer >= 1'),
    ('--max-len', '0', '--max-len must be an integer >= 1'), ('--beta', '-1', '--beta must be a finite number >= 0'),
    ('--threads', '0', '--threads must be an integer >= 1'), ('--max-users', '0', '--max-users must be an integer >= 1'),
    ('--encoding', 'no-such-codec', "--encoding 'no-such-codec' is not a known text encoding")])
def test_bad_train_option_is_refused_before_any_data_is_read(tmp_path, capsys, opt, val, msg):
    "The log does not even exist: the option is named, not the file, so nothing was read; no run folder is left."
    refused(cli(capsys, 'train', '--interactions', tmp_path / 'missing.csv', '--out', tmp_path / 'run', opt, val), msg)
    assert not (tmp_path / 'run').exists() and not partial_dir(tmp_path / 'run').exists()

@pytest.mark.parametrize('argv, msg', [(['-k', '0'], '-k must be an integer >= 1, got 0'), (['-k', '-1'], '-k must be an integer >= 1, got -1'),
                                       (['--texts', ''], '--texts: text 1 is empty'), (['--texts', 'a mug', '  '], '--texts: text 2 is empty')])
def test_bad_recommend_option_is_refused_before_the_run_is_read(tmp_path, capsys, argv, msg):
    who = [] if '--texts' in argv else ['--user', 'u0']
    refused(cli(capsys, 'recommend', tmp_path / 'no-such-run', *who, *argv), msg)

def test_bad_option_from_the_console_is_one_line_without_traceback(tmp_path):
    p = subprocess.run([sys.executable, '-c', 'from interest_llm.cli import main; main()', 'train', '--epochs', '0',
                        '--out', str(tmp_path / 'r')], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == ["interest-llm: error: --epochs must be an integer >= 1, got 0"], p.stderr

def test_embed_interactions_implies_dataset_file(tmp_path, capsys, monkeypatch):
    from interest_llm.llm import make_tiny_model
    llm = make_tiny_model(tmp_path / 'llm')
    write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), [('a', 'p2', 1), ('a', 'p1', 2), ('b', 'p3', 3)])
    write_csv(tmp_path / 'items.csv', ('item', 'text'), [('p1', 'red mug'), ('p2', 'blue cup'), ('p3', 'green pot')])
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(tmp_path / 'cache'))
    info = main(['embed', '--interactions', str(tmp_path / 'log.csv'), '--items', str(tmp_path / 'items.csv'), '--llm-model', str(llm),
                 '--out', str(tmp_path / 'e.safetensors')])
    assert info['dataset'] == 'file' and info['item_ids'] == ['<pad>', 'p1', 'p2', 'p3'] and info['shape'][0] == 4
    refused(cli(capsys, 'embed', '--items', tmp_path / 'items.csv', '--out', tmp_path / 'f.safetensors'), '--items needs --interactions')

def test_item_ids_are_kept_exactly_as_written(trained):
    run, _, rows = trained
    split = SplitData.load(run / 'split')
    assert sorted(split.item_ids[1:].tolist()) == sorted(ITEMS)              # 007 and 7 two items; 12.0 kept as written
    items = pd.read_csv(run / 'items.csv.gz', dtype=str, keep_default_na=False)
    text = dict(zip(items['item'], items['text']))
    assert text['007'] == 'text of 007' and text['7'] == 'text of 7' and text['12.0'] == 'text of 12.0' and text['X99'] == 'text of X99'
    u = list(split.users).index('u0')
    assert split.item_ids[split.seqs[u]].tolist() == [r[1] for r in rows if r[0] == 'u0']

DAYFIRST = ['02/01/2021 10:00', '01/02/2021 10:00', '03/02/2021 10:00', '05/02/2021 10:00', '13/03/2021 10:00']

def _dated_log(path, dates, n_users=10):
    return write_csv(path, ('user', 'item', 'when'), [(f'u{u}', f'i{(u + e) % 8}', d) for u in range(n_users) for e, d in enumerate(dates)])

def _sequences_in_file_order(run, dates):
    split = SplitData.load(run / 'split')
    for u, name in enumerate(split.users):
        k = int(name[1:])
        assert split.item_ids[split.seqs[u]].tolist() == [f'i{(k + e) % 8}' for e in range(len(dates))], name
        assert (np.diff(split.times[u]) > 0).all()

def test_day_first_dates_are_read_day_first_in_every_row(tmp_path, capsys):
    "13/03 tells the order, so 02/01 and 01/02 are 2 January and 1 February: the sequences keep the file's order."
    log = _dated_log(tmp_path / 'log.csv', DAYFIRST)
    code, out, err = cli(capsys, 'train', '--interactions', log, '--time-col', 'when', *QUICK, '--out', tmp_path / 'run')
    assert code == 0, err
    _sequences_in_file_order(tmp_path / 'run', DAYFIRST)
    split = SplitData.load(tmp_path / 'run' / 'split')
    assert pd.to_datetime(split.times[0][0], unit='s') == pd.Timestamp('2021-01-02 10:00')
    refused(cli(capsys, 'train', '--interactions', log, '--time-col', 'when', '--monthfirst', *QUICK, '--out', tmp_path / 'r2'),
            str(log), "column 'when'", "'13/03/2021 10:00' is not a month-first date", '--dayfirst')

def test_ambiguous_dates_need_dayfirst_or_monthfirst(tmp_path, capsys):
    dates = [d.replace('13/03', '12/03') for d in DAYFIRST]             # no day above 12: no value tells the order
    log = _dated_log(tmp_path / 'log.csv', dates)
    refused(cli(capsys, 'train', '--interactions', log, '--time-col', 'when', *QUICK, '--out', tmp_path / 'run'),
            str(log), "column 'when'", 'can be read day-first or month-first', '--dayfirst or --monthfirst')
    assert not (tmp_path / 'run').exists() and not partial_dir(tmp_path / 'run').exists()
    code, _, err = cli(capsys, 'train', '--interactions', log, '--time-col', 'when', '--dayfirst', *QUICK, '--out', tmp_path / 'run')
    assert code == 0, err
    _sequences_in_file_order(tmp_path / 'run', dates)

def test_dates_mixing_both_orders_are_refused(tmp_path, capsys):
    log = _dated_log(tmp_path / 'log.csv', ['13/01/2021', '01/14/2021', '20/01/2021', '21/01/2021', '22/01/2021'])
    refused(cli(capsys, 'train', '--interactions', log, '--time-col', 'when', *QUICK, '--out', tmp_path / 'run'),
            str(log), "column 'when'", 'day-first in some rows', 'month-first in others')

def test_epoch_milliseconds_are_detected_and_converted(tmp_path, capsys):
    rows = [(u, i, t * 1000) for u, i, t in log_rows(ITEMS)]
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), rows)
    code, out, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run')
    assert code == 0, err
    assert 'values look like epoch milliseconds' in out and "column 'timestamp'" in out
    split = SplitData.load(tmp_path / 'run' / 'split')
    assert sorted(np.concatenate(split.times).tolist()) == sorted(t // 1000 for _, _, t in rows)

def test_mixed_time_zones_are_converted_to_utc_and_said(tmp_path, capsys):
    rows = log_rows(ITEMS)
    iso = [(u, i, pd.Timestamp(t, unit='s', tz='UTC').tz_convert('Europe/Paris').isoformat() if k % 2 else
            pd.Timestamp(t, unit='s').strftime('%Y-%m-%dT%H:%M:%SZ')) for k, (u, i, t) in enumerate(rows)]
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), iso)
    code, out, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run')
    assert code == 0, err
    assert 'mixed time zones' in out and 'converted to UTC' in out
    split = SplitData.load(tmp_path / 'run' / 'split')
    assert sorted(np.concatenate(split.times).tolist()) == sorted(t for _, _, t in rows)

def test_unparseable_time_names_file_column_and_row(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'when'), [('a', 'x', '2021-01-01'), ('a', 'y', 'soon')])
    refused(cli(capsys, 'train', '--interactions', log, '--time-col', 'when', *QUICK, '--out', tmp_path / 'run'),
            str(log), "column 'when'", "row 1: 'soon'")

def test_exclude_seen_never_returns_a_seen_item(trained, capsys):
    run, _, rows = trained
    seen = {i for u, i, _ in rows if u == 'u0'}
    code, out, err = cli(capsys, 'recommend', run, '--user', 'u0', '--exclude-seen', '-k', '50', '--json')
    assert code == 0, err
    recs = json.loads(out)
    assert len(recs) == len(ITEMS) - len(seen) and not {r['item'] for r in recs} & seen
    assert all(np.isfinite(r['score']) for r in recs)
    assert f'{len(recs)} recommendations, not 50' in err and '--exclude-seen' in err

def test_train_cleans_by_default_and_reports_it(trained):
    run, out, rows = trained
    assert 'cleaning: duplicates' in out and f'{len(rows) + 5} -> {len(rows)} rows' in out and 'e.g.' in out
    assert "texts filled from title or id, e.g. 'i4'" in out and "with different texts, e.g. 'i5'" in out
    m = json.loads((run / 'metrics.json').read_text())
    assert m['data']['n_events'] == len(rows) and {s['step'] for s in m['data']['cleaning']} >= {'duplicates', 'items without text'}
    assert 'Cleaning (`--no-clean` keeps the raw log)' in (run / 'report.md').read_text()

def test_no_clean_keeps_the_raw_log(tmp_path, capsys):
    rows = log_rows(ITEMS)
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), rows + rows[:50] + rows[:50])   # 100 repeated events
    code, out, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--no-clean', '--out', tmp_path / 'run')
    assert code == 0, err
    assert 'cleaning:' not in out
    assert json.loads((tmp_path / 'run' / 'metrics.json').read_text())['data']['n_events'] == len(rows) + 100

def test_no_user_with_four_events(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS, n_events=3))
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run'), str(log), 'no user has 4 or more events')
    assert not (tmp_path / 'run').exists() and not partial_dir(tmp_path / 'run').exists()

def test_pad_as_an_item_id(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS[:-1] + ['<pad>']))
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run'), str(log), "'<pad>' is reserved for padding", 'rename')

def test_semicolon_file_suggests_sep(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS), sep=';')
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run'), str(log), "--sep ';'")

def test_latin1_items_file(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    items = write_csv(tmp_path / 'items.csv', ('item', 'text'), [(i, f'caf\u00e9 cr\u00e8me {i}') for i in ITEMS], encoding='latin-1')
    offset = items.read_bytes().index(b'\xe9')
    refused(cli(capsys, 'train', '--interactions', log, '--items', items, *QUICK, '--out', tmp_path / 'run'),
            str(items), f'at byte offset {offset}, line 2', '--encoding latin-1')
    code, _, err = cli(capsys, 'train', '--interactions', log, '--items', items, '--encoding', 'latin-1', *QUICK, '--out', tmp_path / 'run')
    assert code == 0, err
    got = pd.read_csv(tmp_path / 'run' / 'items.csv.gz', dtype=str)
    assert got.set_index('item').loc['007', 'text'] == 'caf\u00e9 cr\u00e8me 007'

def test_unwritable_out(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    (tmp_path / 'file').write_text('not a folder')
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'file' / 'run'), 'cannot write run folder', 'writable --out')
    refused(cli(capsys, 'embed', '--interactions', log, '--out', tmp_path / 'file' / 'e.safetensors'), 'cannot create', 'writable path')
    assert (tmp_path / 'file').read_text() == 'not a folder'



def test_cli_bad_input(tmp_path):
    "`interest-llm`: a missing run folder, a missing interactions file, a file data set without --interactions."
    pytest.importorskip('interest_llm.cli')
    import contextlib
    from interest_llm.cli import main
    cases = [(['evaluate', str(tmp_path / 'no-such-run')], r'no-such-run: no saved model \(config.json missing'),
             (['train', '--dataset', 'file', '--out', str(tmp_path / 'o')], r'--dataset file needs --interactions'),
             (['train', '--dataset', 'file', '--interactions', str(tmp_path / 'none.csv'), '--out', str(tmp_path / 'o')], r'none\.csv')]
    for argv, pattern in cases:
        buf = io.StringIO()
        with contextlib.redirect_stderr(buf), pytest.raises(SystemExit) as e: main(argv)
        assert e.value.code == 2 and re.search(pattern, buf.getvalue()), (argv, buf.getvalue())


# ------------------------------------------------------------------------- writing only what the command made (issue 26)
def test_embed_never_overwrites_an_input_nor_a_file_it_did_not_write(tmp_path, capsys, tiny_llm, cache):
    "`embed --out` on its own --items, a .json name (the ids would overwrite the vectors), a foreign file: refused."
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    items = write_csv(tmp_path / 'mine.csv', ('item', 'text'), [(i, f'red mug {i}') for i in ITEMS])
    keep = items.read_bytes()
    embed = ['embed', '--interactions', log, '--items', items, '--llm-model', tiny_llm]
    refused(cli(capsys, *embed, '--out', items), f'--out {items} is the --items file this command reads')
    refused(cli(capsys, *embed, '--out', items, '--force'), 'destroy it')          # an input: never
    (tmp_path / 'log.safetensors').write_text('not ours')
    refused(cli(capsys, *embed, '--out', tmp_path / 'log.safetensors'), 'exists and was not written', '--force')
    assert (tmp_path / 'log.safetensors').read_text() == 'not ours'
    refused(cli(capsys, *embed, '--out', tmp_path / 'vectors.json'), 'the same file', '--out ' + str(tmp_path / 'vectors.safetensors'))
    assert items.read_bytes() == keep and not (tmp_path / 'vectors.json').exists()
    (tmp_path / 'notes.json').write_text('{"mine": 1}')                              # the item-id file's name
    refused(cli(capsys, *embed, '--out', tmp_path / 'notes.safetensors'), f'--out {tmp_path / "notes.json"} exists')
    code, _, err = cli(capsys, *embed, '--out', tmp_path / 'vectors.safetensors')   # the suggested name
    assert code == 0, err
    code, _, err = cli(capsys, *embed, '--out', tmp_path / 'vectors.safetensors')   # its own files: replaced
    assert code == 0, err
    from safetensors.torch import load_file
    e = load_file(str(tmp_path / 'vectors.safetensors'))['text_emb']
    assert e.shape[0] == len(json.loads((tmp_path / 'vectors.json').read_text())['item_ids']) == len(ITEMS) + 1
    assert cli(capsys, *embed, '--out', tmp_path / 'notes.safetensors', '--force')[0] == 0   # told to
    assert 'item_ids' in json.loads((tmp_path / 'notes.json').read_text())

def test_benchmark_report_only_needs_its_results_and_keeps_other_markdown(tmp_path, capsys):
    md = tmp_path / 'B.md'
    md.write_text('# Benchmarks\n\nan older report\n')
    refused(cli(capsys, 'benchmark', '--report-only', '--results', tmp_path / 'typo.json', '--markdown', md),
            f'--results {tmp_path / "typo.json"} does not exist')
    assert md.read_text() == '# Benchmarks\n\nan older report\n'
    results = tmp_path / 'results.json'
    results.write_text('[]')
    readme = tmp_path / 'README.md'
    readme.write_text('# My project\n')
    refused(cli(capsys, 'benchmark', '--report-only', '--results', results, '--markdown', readme),
            'exists and was not written by this command', '--force')
    assert readme.read_text() == '# My project\n'
    refused(cli(capsys, 'benchmark', '--report-only', '--results', results, '--markdown', results), 'destroy it')
    (tmp_path / 'other.json').write_text('{"not": "rows"}')
    refused(cli(capsys, 'benchmark', '--report-only', '--results', tmp_path / 'other.json', '--markdown', md),
            'is not a results file')
    assert cli(capsys, 'benchmark', '--report-only', '--results', results, '--markdown', md)[0] == 0
    assert cli(capsys, 'benchmark', '--report-only', '--results', results, '--markdown', readme, '--force')[0] == 0
    assert readme.read_text().startswith('# Benchmarks') and json.loads(results.read_text()) == []

def test_missing_or_broken_language_model_is_one_line(tmp_path, capsys, tiny_llm, cache):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    train = ['train', '--interactions', log, '--quick', '--baselines', 'none', '--epochs', '1']
    refused(cli(capsys, *train, '--llm-model', tmp_path / 'nowhere', '--out', tmp_path / 'r'),
            '--llm-model', str(tmp_path / 'nowhere'), 'does not exist')
    assert not (tmp_path / 'r').exists() and not partial_dir(tmp_path / 'r').exists()
    broken = tmp_path / 'broken'
    shutil.copytree(tiny_llm, broken)
    (broken / 'model.safetensors').write_bytes(b'torn')
    refused(cli(capsys, *train, '--llm-model', broken, '--out', tmp_path / 'r'), 'is not a usable model folder')
    refused(cli(capsys, 'embed', '--interactions', log, '--llm-model', broken, '--out', tmp_path / 'e.safetensors'),
            str(broken), 'is not a usable model folder')

def test_embedding_cache_problems_are_one_line_with_the_fix(tmp_path, capsys, tiny_llm, monkeypatch):
    "A cache that is a file, or holds a NaN vector: one line naming it; following the fix works."
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    embed = ['embed', '--interactions', log, '--llm-model', tiny_llm, '--out', tmp_path / 'e.safetensors']
    (tmp_path / 'cachefile').write_text('not a folder')
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(tmp_path / 'cachefile'))
    refused(cli(capsys, *embed), f'cannot write the embedding cache {tmp_path / "cachefile"}', 'INTEREST_LLM_CACHE')
    refused(cli(capsys, 'train', '--interactions', log, '--quick', '--llm-model', tiny_llm, '--baselines', 'none',
                '--epochs', '1', '--out', tmp_path / 'r'), 'cannot write the embedding cache')
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(tmp_path / 'cache'))                # the fix
    assert cli(capsys, *embed)[0] == 0
    from safetensors.numpy import load_file, save_file
    shard = next((tmp_path / 'cache').rglob('shard-*.safetensors'))
    d = load_file(str(shard))
    d['emb'][2] = np.nan
    save_file(d, str(shard))
    refused(cli(capsys, *embed, '--force'), f'embedding cache file {shard} holds NaN or inf vectors', 'delete that file')
    shard.unlink()
    assert cli(capsys, *embed)[0] == 0
    from safetensors.torch import load_file as load_torch
    assert torch.isfinite(load_torch(str(tmp_path / 'e.safetensors'))['text_emb']).all()
