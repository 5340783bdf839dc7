"""End-to-end tests of the `interest-llm` command (quick configurations: seconds, not minutes)."""
import json, os, shutil, subprocess, sys
import numpy as np, pandas as pd, pytest
from interest_llm.cli import main, build_parser

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
    from interest_llm.train import metrics_from_ranks
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
    import interest_llm.model as M
    from interest_llm.model import bf16_native
    seen = []
    orig = M._FusedCE.apply
    monkeypatch.setattr(M._FusedCE, 'apply', lambda *a: seen.append((a[1].shape[1], a[-1])) or orig(*a))   # (item width, low dtype: None = fp32)
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
    "An exception inside the baseline process comes back as a one-line CLIError naming it."
    from interest_llm.cli import BaselineProcess, CLIError, resolve
    from interest_llm.data import simulate_drift, leave_one_out
    split = leave_one_out(simulate_drift(n_users=30, n_items=80, seed=0)[0], seed=0, n_negatives=0)
    args = resolve(build_parser().parse_args(['train', '--quick', '--hidden', '-4']))   # a negative width fails inside the process
    bp = BaselineProcess(args, ['gru4rec'], split, None, lambda line: None)
    with pytest.raises(CLIError, match='baseline process: .*Error'): bp.join()

def test_baselines_take_the_width_of_our_model():
    from interest_llm.cli import baseline_kwargs
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


def test_amazon_office_loader(data_dir):
    "The sparse, text-rich Amazon set: the published sequences in order, real review days as timestamps, product text."
    from interest_llm.data import load_dataset, leave_one_out
    if not (data_dir / 'amazon-office-2014').is_dir(): pytest.skip('amazon-office-2014/ not in the shared data')
    inter, items = load_dataset('amazon-office', data_dir=data_dir)
    assert (len(inter), inter.user.nunique(), inter.item.nunique()) == (53258, 4905, 2420)
    pos = pd.read_csv(data_dir / 'amazon-office-2014' / 'interactions.csv', dtype={'user': str, 'item': str})
    split = leave_one_out(inter, seed=0)                           # order by day keeps the published order on equal days
    by_user = pos.groupby('user', sort=False).item.apply(list)
    for u in split.users[:500]: assert list(split.item_ids[split.seqs[split.users.tolist().index(u)]]) == by_user[u]
    assert inter.timestamp.min() > 9e8                             # Unix seconds of real review days, not positions
    t = items.set_index('item').text
    assert t.str.len().min() > 10 and not items.title.str.contains('&amp;').any()   # HTML entities of the titles decoded
