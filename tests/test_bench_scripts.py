"""The benchmark scripts that are not `interest-llm benchmark` rows, run on the simulator with the quick profile."""
import json, subprocess, sys
import numpy as np
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

def test_coldstart_script_writes_its_section(tmp_path):
    cmd = [sys.executable, str(REPO / 'scripts' / 'bench_coldstart.py'), '--dataset', 'simulated', '--seeds', '0', '--quick', '--out', str(tmp_path)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path / 'coldstart-simulated.json').read_text())
    run = res['runs'][0]
    assert res['dataset'] == 'simulated' and run['n_cold_items'] == 30 and run['n_items'] == 300
    by = {k: run[k] for k in ('ID only (--no-llm)', 'text+ID, as trained', 'text+ID, cold items from text only')}
    for m in by.values():
        assert m['n_cold'] > 0 and m['n_warm'] > 0 and m['n_cold'] + m['n_warm'] == by['ID only (--no-llm)']['n_cold'] + by['ID only (--no-llm)']['n_warm']
        assert all(0 <= m[g]['hr@10'] <= m[g]['hr@100'] <= 1 for g in ('cold', 'warm'))
    content = run['content baseline (text similarity to the history)']           # the text-only reference scorer
    assert content['n_cold'] == by['ID only (--no-llm)']['n_cold'] and 0 <= content['cold']['hr@10'] <= 1
    # the text-only wrapper re-scores the cold items: the cold users' metrics move
    assert by['text+ID, cold items from text only']['cold'] != by['text+ID, as trained']['cold']
    md = (tmp_path / 'coldstart-simulated.md').read_text()
    assert md.startswith('## Cold-start items on simulated') and "the CLI's quick profile" in md
    assert md.count('\n| ') == 6 and 'bench_coldstart.py --dataset simulated --seeds 0 --quick' in md
    # the neighbour scorer: k chosen on the validation cold users from the grid, never on test; k = 0 is the text-only scorer
    assert run['neighbour_k'] in (0, 1, 3, 10) and set(run['neighbour_valid_cold_hr@10']) == {'0', '1', '3', '10'}
    nb = run['text+ID, cold items from text via their nearest warm items']
    assert max(run['neighbour_valid_cold_hr@10'].values()) == run['neighbour_valid_cold_hr@10'][str(run['neighbour_k'])]
    assert nb['n_cold'] == content['n_cold'] and 0 <= run['neighbour_valid_cold_mass'] <= 1 and 0 < run['valid_cold_share'] < 1
    if run['neighbour_k'] == 0: assert nb == by['text+ID, cold items from text only']
    # --report-only rewrites the same section from coldstart-<dataset>.json, without training
    (tmp_path / 'coldstart-simulated.md').unlink()
    p = subprocess.run(cmd[:2] + ['--dataset', 'simulated', '--report-only', '--out', str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / 'coldstart-simulated.md').read_text() == md and 'predate the repeat term' not in md
    # results written before the model had its repeat term (no 'repeat_term' key) say so in the section
    res.pop('repeat_term'); (tmp_path / 'coldstart-simulated.json').write_text(json.dumps(res))
    p = subprocess.run(cmd[:2] + ['--dataset', 'simulated', '--report-only', '--out', str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert p.returncode == 0 and 'predate the repeat term' in (tmp_path / 'coldstart-simulated.md').read_text(), p.stderr[-3000:]
    # a run with --no-id-model lacks the ID-only scorer: the section leaves its row out and says so
    for key in ('ID only (--no-llm)', 'id_epochs', 'id_best_epoch'): run.pop(key)
    (tmp_path / 'coldstart-simulated.json').write_text(json.dumps(res))
    p = subprocess.run(cmd[:2] + ['--dataset', 'simulated', '--report-only', '--out', str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=REPO)
    md = (tmp_path / 'coldstart-simulated.md').read_text()
    assert p.returncode == 0 and md.count('\n| ') == 5 and 'ID only (--no-llm) |' not in md and 'not trained (--no-id-model)' in md, p.stderr[-3000:]

def _run(script, *args):
    p = subprocess.run([sys.executable, str(REPO / 'scripts' / script), *args], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout

def test_ce_script_times_both_loss_paths():
    out = _run('bench_ce.py', '--rounds', '1', '--max-batches', '2')
    rows = dict(l.strip('|').split('|')[:2] for l in out.splitlines() if l.startswith('| ') and 'loss path' not in l)
    assert set(map(str.strip, rows)) == {'full logits', 'chunked CE'} and all(float(v) > 0 for v in rows.values())
    assert 's/2 batches (best of 1)' in out and 'x the speed of the full logits' in out

def test_tracker_script_reports_every_path_and_the_window():
    out = _run('bench_tracker.py', '--events', '300', '--batch', '64', '--probe-users', '5')
    paths = [l.split('|')[1].strip() for l in out.splitlines() if l.startswith('| ') and 'events/s' not in l]
    assert paths == ['observe (state only)', 'update -> top-10 list', 'update -> top-10 DataFrame', 'update_many, batches of 64']
    # the repeat window holds the last max_len (50) items at most, so work per event stays bounded
    assert [l.split('window ')[1] for l in out.splitlines() if 'prior events' in l and 'window' in l] == ['2 items)', '50 items)', '50 items)']

def test_main_job_timer_reads_the_jobs_own_lines(tmp_path):
    "scripts/time_main_job.py reads the stage times from the progress lines of a real run's log, and writes its section."
    sys.path.insert(0, str(REPO / 'scripts'))
    import time_main_job as tmj
    log = tmp_path / 'train.log'
    with open(log, 'w') as f:
        p = subprocess.run([sys.executable, '-c', 'from interest_llm.cli import main; main()', 'train', '--dataset', 'simulated', '--quick',
                            '--baselines', 'pop,gru4rec', '--epochs', '3', '--patience', '3', '--out', str(tmp_path / 'run')],
                           stdout=f, stderr=subprocess.PIPE, text=True, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    st = tmj._stage_times(log.read_text())
    assert st['ours_epochs'] == 3 and st['gru4rec_epochs'] == 3 and st['embed_s'] >= 0 and st['ours_stop'] == 'max epochs'
    assert {'baseline_pop_s', 'baseline_gru4rec_s', 'ours_train_s', 'ours_valid_s'} <= set(st)
    m = json.loads((tmp_path / 'run' / 'metrics.json').read_text())
    r = dict(command='interest-llm train', wall_s=75.0, install_s=None, fresh_venv=False, empty_cache=True, load_before=(0.1, 0, 0),
             load_after=(1.9, 0, 0), cpus=2, python='3', torch=m['torch'], threads=m['threads'], peak_rss_mb=m['peak_rss_mb'],
             test_ndcg10=m['test']['ndcg@10'], test_hr10=m['test']['hr@10'], baselines={k: v['test']['ndcg@10'] for k, v in m['baselines'].items()},
             commit='abc1234', finished='2026-11-30 12:00', baseline_process=m['baseline_process'], precision=m['precision'], **st)
    md = tmj.markdown(r)
    side = ' — in the second process, alongside our model' if m['baseline_process'] else ''    # 2+ threads: gru4rec trained beside ours
    assert md.startswith('## The main job') and f'| baseline gru4rec (3 epochs){side} |' in md and '1 min 15 s' in md
    assert f"the loss's products in {m['precision']}" in md
    assert f"ours {m['test']['ndcg@10']:.4f}" in md
    # with --repeat: the median run's clock from its metrics.json, and every run's wall time
    from interest_llm.runs import time_profile
    prof = [dict(p, share=None if p['share'] != p['share'] else p['share']) for p in time_profile(m).to_dict('records')]
    md = tmj.markdown(dict(r, repeats=[80.0, 75.0, 90.0], wall_median=80.0, wall_min=75.0, wall_max=90.0,
                           test_ndcg10_runs=[0.1, 0.1, 0.1], profile=prof))
    assert 'wall time median 80.0 s, range 75.0–90.0 s' in md and '| training, 3 epochs |' in md
    assert f"| whole command | {prof[-1]['seconds']:.1f} | 100% |" in md and prof[-1]['stage'] == 'whole command'
    assert abs(prof[-1]['seconds'] - m['timing']['total_s']) < 0.01

def test_precision_benchmark_times_both_precisions(tmp_path):
    "scripts/bench_precision.py times our model and GRU4Rec in fp32 and bf16 at 1 and 2 threads and writes its section."
    out = tmp_path / 'precision.md'
    p = subprocess.run([sys.executable, str(REPO / 'scripts' / 'bench_precision.py'), '--steps', '2', '--out', str(out)],
                       capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    md = out.read_text()
    assert md.startswith('## Loss precision') and md.count('| ours |') == 2 and md.count('| gru4rec |') == 2
    assert all(float(x) > 0 for l in md.splitlines() if l.startswith(('| ours', '| gru4rec')) for x in l.strip('|').split('|')[2:4])

def test_latent_defaults_script_reports_active_units(tmp_path):
    "scripts/latent_defaults.py trains with the CLI's defaults per seed and tabulates the active units of the best epoch."
    out = tmp_path / 'latent.md'
    p = subprocess.run([sys.executable, str(REPO / 'scripts' / 'latent_defaults.py'), '--dataset', 'simulated', '--seeds', '0', '--out', str(out)],
                       capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    md = out.read_text()
    row = [l for l in md.splitlines() if l.startswith('| 0 |')][0].strip('|').split('|')
    active, Z = int(row[1]), int(row[2])
    assert md.startswith('## Active latent units with the defaults (simulated)') and Z == 32 and 0 <= active <= Z
    assert f'Mean {active:.1f} of 32 units active; fewest in one seed: {active}' in md
    sys.path.insert(0, str(REPO / 'scripts'))
    import latent_defaults as ld
    rows = [dict(seed=s, active=a, Z=32, kl=1.5, best_epoch=9, epochs=12, test_ndcg10=0.1, precision='bf16') for s, a in ((0, 32), (1, 12))]
    assert '(below half in at least one seed)' in ld.markdown('x', rows) and '(at least half in every seed)' in ld.markdown('x', rows[:1])


def test_recbole_peer_writes_our_split_as_atomic_files(tmp_path):
    "scripts/recbole_peer.py --convert-only: one row per event of every evaluated user, in our order, timestamp = position."
    from interest_llm.data import SplitData
    sys.path.insert(0, str(REPO / 'scripts'))
    import recbole_peer as rp
    seqs = [np.array([1, 2, 3, 1]), np.array([2, 3]), np.array([3, 1, 2])]       # the second user: training only
    split = SplitData(np.array(['<pad>', 'a', 'b', 'c']), np.array(['u0', 'u1', 'u2']), seqs,
                      [np.arange(len(s)) * 10 for s in seqs], None)
    path = rp.write_atomic(split, 'toy', tmp_path)
    lines = path.read_text().splitlines()
    assert lines[0] == 'user_id:token\titem_id:token\ttimestamp:float'
    assert lines[1:] == ['u0\ta\t0', 'u0\tb\t1', 'u0\tc\t2', 'u0\ta\t3', 'u2\tc\t0', 'u2\ta\t1', 'u2\tb\t2']
    assert rp._public(['--dataset', 'x', '--python', '/home/me/rb/bin/python', '--out', '/tmp/q']) == \
        ['--dataset', 'x', '--python', 'RECBOLE_PYTHON']
    cfg = rp.recbole_config('toy', tmp_path, 'SASRec', 5, 2, False)
    assert cfg['eval_args']['split'] == {'LS': 'valid_and_test'} and cfg['eval_args']['order'] == 'TO'
    assert cfg['loss_type'] == 'CE' and cfg['train_neg_sample_args'] is None and cfg['MAX_ITEM_LIST_LENGTH'] == 50


def test_recbole_peer_puts_our_rows_beside_recboles():
    "The RecBole section lists our implementation of each RecBole model on the same split, with the ratio."
    sys.path.insert(0, str(REPO / 'scripts'))
    import recbole_peer as rp
    metrics = lambda nd: {'ndcg@10': nd, 'hit@10': 0.1, 'mrr@10': 0.03, 'ndcg@20': 0.06}
    res = dict(name='toy', users=3, events=9, stock=False, threads=1, epochs=5, command='python scripts/recbole_peer.py',
               finished='2026-12-05 15:00', models={'SASRec': dict(test_result=metrics(0.05), seconds=10,
                                                                   best_valid_result=metrics(0.06))})
    rows = [dict(dataset='toy', model='sasrec', seed=s, test={'ndcg@10': nd, 'hr@10': 0.1}) for s, nd in ((0, .05), (1, .06))]
    rows.append(dict(dataset='other', model='sasrec', seed=0, test={'ndcg@10': 0.9, 'hr@10': 0.9}))
    md = rp.markdown(res, rows)
    assert '| SASRec | 0.0500 |' in md
    assert '`sasrec` on the same split, seeds 0,1' in md and 'test NDCG@10 0.0550' in md and '1.10 x RecBole' in md
    assert 'at least it' in md and 'Ours:' not in rp.markdown(res, rows[2:])   # no row of ours on that data set


def test_recbole_peer_reads_epochs_from_recboles_log(tmp_path):
    sys.path.insert(0, str(REPO / 'scripts'))
    import recbole_peer as rp
    log = tmp_path / 'x.log'
    log.write_text('INFO  epoch 0 training [time: 1s]\nINFO  epoch 1 training [time: 1s]\nINFO  epoch 2 training [time: 1s]\n'
                   'INFO  Finished training, best eval result in epoch 1\n')
    assert rp.log_epochs(log) == dict(epochs_run=3, best_epoch=1)
