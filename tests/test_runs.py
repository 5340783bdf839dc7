"""Run folders through the command line a user runs: an interrupted run is never silently restarted or mixed with
other options or data, a kill during the final write leaves no half run folder, files of two runs are never mixed,
damaged folders are refused with the fix. (Tiny configuration: `--quick --no-llm --epochs 1`.)"""
import contextlib, errno, fcntl, gzip, json, os, shlex, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
import interest_llm.runs as runs_mod
from interest_llm.cli import main
from interest_llm.data import SplitData
from interest_llm.runs import load_run, partial_dir
from interest_llm.tracker import InterestTracker
from cli_helpers import QUICK, ITEMS, cli, refused, snapshot, write_csv, log_rows, train_on_awkward_ids

pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "A finished run on ids that need care (`cli_helpers.train_on_awkward_ids`)."
    return train_on_awkward_ids(tmp_path_factory.mktemp('trained'))

def test_interrupted_run_is_never_silently_restarted(tmp_path, capsys, monkeypatch):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    run, work = tmp_path / 'run', partial_dir(tmp_path / 'run')
    train = ['train', '--interactions', log, *QUICK, '--out', run]
    def full_disk(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(runs_mod, 'write_run', full_disk)        # the disk fills up during the final write
    refused(cli(capsys, *train), 'No space left on device', 'nothing was lost', str(work), '--resume')
    monkeypatch.undo()
    assert not run.exists() and (work / 'checkpoints' / 'last.json').exists()
    before = snapshot(work)
    refused(cli(capsys, *train), 'interrupted run', 'checkpoint of epoch 1', 'pass --resume')       # no silent restart
    refused(cli(capsys, *train, '--resume', '--lr', '0.01'), '--resume', '--lr 0.003', '--lr 0.01', 'same options')
    refused(cli(capsys, 'evaluate', run), 'interrupted run', '--resume')
    write_csv(log, ('user', 'item', 'timestamp'), log_rows([i + 'b' for i in ITEMS]))   # same size, other catalogue
    refused(cli(capsys, *train, '--resume'), 'another catalogue', 'same data')
    assert snapshot(work) == before                                                   # nothing on disk was lost
    write_csv(log, ('user', 'item', 'timestamp'), log_rows(ITEMS))
    # a checkpoint write killed by SIGKILL leaves temporary files: the next run removes them, and says so
    for f in ('last.json.tmp99999', 'state-0002.safetensors.tmp99999'): (work / 'checkpoints' / f).write_bytes(b'half')
    code, out, err = cli(capsys, *[a if a != '1' else '2' for a in train], '--resume')   # one more epoch: allowed
    assert code == 0, err
    assert 'removed 2 temporary file(s)' in out
    m = json.loads((run / 'metrics.json').read_text())
    assert [h['epoch'] for h in m['history']] == [1, 2] and not work.exists()
    assert not [p for p in run.rglob('*') if '.tmp' in p.name]
    refused(cli(capsys, *train), 'already holds a finished run')
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'other', '--resume'), 'no checkpoint to resume')

def test_kill_during_the_final_write_leaves_no_half_run_folder(tmp_path, capsys, monkeypatch):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    real = runs_mod.write_run
    def killed(folder, *a, **k):
        real(folder, *a, **k)
        with open(Path(folder) / 'split.npz', 'r+b') as f: f.truncate(100)   # a torn file ...
        raise KeyboardInterrupt                                            # ... then the process dies
    monkeypatch.setattr(runs_mod, 'write_run', killed)
    code, _, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run')
    monkeypatch.undo()
    assert code == 130 and len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err   # Ctrl-C: one line
    assert not (tmp_path / 'run').exists() and (partial_dir(tmp_path / 'run') / 'checkpoints' / 'last.json').exists()
    resume = err.split('continue with: ')[1].strip()                  # the command it prints, followed literally
    assert resume.endswith('--resume')
    code, _, err = cli(capsys, *shlex.split(resume)[1:])
    assert code == 0, err
    assert SplitData.load(tmp_path / 'run' / 'split').n_items == len(ITEMS)

def test_model_and_split_of_another_catalogue_of_the_same_size_are_refused(trained, tmp_path, capsys):
    run, _, _ = trained
    keep = snapshot(run)
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows([f'j{k}' for k in range(len(ITEMS))]))
    code, _, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'other')
    assert code == 0, err
    mixed = tmp_path / 'mixed'; shutil.copytree(run, mixed)
    for f in ('split.npz', 'split.json'): shutil.copy(tmp_path / 'other' / f, mixed / f)
    refused(cli(capsys, 'evaluate', mixed), 'mixes files of two runs')
    refused(cli(capsys, 'recommend', mixed, '--user', 'u0'), 'mixes files of two runs')
    model, split, _, cfg = load_run(run)
    other = SplitData.load(tmp_path / 'other' / 'split')
    assert other.n_items == split.n_items and cfg['catalogue_sha256'] == split.info['catalogue_sha256']
    with pytest.raises(ValueError, match='not the one the model was trained on'): InterestTracker(model, other)
    InterestTracker(model, split)                                     # its own split is accepted
    assert snapshot(run) == keep

@pytest.mark.parametrize('damage, msg', [
    (lambda r: (r / 'config.json').write_text(''), 'config.json is empty or truncated'),
    (lambda r: (r / 'config.json').write_text((r / 'config.json').read_text()[:50]), 'config.json is empty or truncated'),
    (lambda r: (r / 'split.npz').write_bytes((r / 'split.npz').read_bytes()[:200]), 'truncated or corrupt split'),
    (lambda r: (r / 'items.csv.gz').write_bytes((r / 'items.csv.gz').read_bytes()[:30]), 'items.csv.gz is missing or truncated'),
    (lambda r: (r / 'model.safetensors').unlink(), 'model.safetensors is missing')])
def test_damaged_run_folder(trained, tmp_path, capsys, damage, msg):
    run, _, _ = trained
    keep = snapshot(run)
    bad = tmp_path / 'bad'; shutil.copytree(run, bad); damage(bad)
    refused(cli(capsys, 'evaluate', bad), msg)
    refused(cli(capsys, 'recommend', bad, '--user', 'u0'), msg)
    assert snapshot(run) == keep



# ------------------------------------------------------------------------- what a model was trained on (issue 26)
@pytest.fixture
def cache(tmp_path, monkeypatch):
    "An embedding cache of this test alone."
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(tmp_path / 'cache'))
    return tmp_path / 'cache'

def texts_train(d, lm, users=12, texts='red mug'):
    "`train` argv on a log of `users` users and an item file whose texts start with `texts`, with language model `lm`."
    log = write_csv(d / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS, n_users=users))
    items = write_csv(d / 'items.csv', ('item', 'text'), [(i, f'{texts} {k}') for k, i in enumerate(ITEMS)])
    return ['train', '--interactions', log, '--items', items, '--llm-model', lm, '--quick', '--baselines', 'none',
            '--epochs', '1', '--no-progress']

def interrupt(capsys, monkeypatch, argv):
    "Run `argv` until the disk 'fills up' in the final write: an interrupted run with the checkpoint of epoch 1."
    def full_disk(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(runs_mod, 'write_run', full_disk)
    refused(cli(capsys, *argv), 'No space left on device', '--resume')
    monkeypatch.undo()

def test_resume_checks_the_data_texts_and_language_model(tmp_path, capsys, monkeypatch, bert_dir, cache):
    "A resume after the log (same items), the item texts or the language model changed is refused, naming the part;"
    " with the same data it resumes, also from a language model folder that moved."
    from interest_llm.llm import make_tiny_model
    lm = tmp_path / 'lm'
    shutil.copytree(bert_dir, lm)
    run = tmp_path / 'run'
    train = texts_train(tmp_path, lm) + ['--out', run]
    interrupt(capsys, monkeypatch, train)
    monkeypatch.setenv('INTEREST_LLM_CACHE', str(cache))
    work, before = partial_dir(run), snapshot(partial_dir(run))
    texts_train(tmp_path, lm, users=14)                                            # two more users, same items
    refused(cli(capsys, *train, '--resume'), '--resume: the data has another split (users and events)',
            'same data')
    texts_train(tmp_path, lm, texts='blue cup')                                    # same log, other item texts
    refused(cli(capsys, *train, '--resume'), 'another item texts', str(work))
    texts_train(tmp_path, lm)
    make_tiny_model(lm, 'bert', seed=1)                                            # another model, same width
    refused(cli(capsys, *train, '--resume'), '--resume: --llm-model has another language model', 'same data')
    assert snapshot(work) == before                                                # nothing on disk was lost
    make_tiny_model(lm, 'bert', seed=0)                                            # the run's own model again ...
    shutil.move(lm, tmp_path / 'moved')                                            # ... in another folder
    code, _, err = cli(capsys, *[a if a != lm else tmp_path / 'moved' for a in train], '--resume')
    assert code == 0, err
    fp = json.loads((run / 'config.json').read_text())['fingerprint']
    assert set(fp) >= {'catalogue', 'texts', 'split', 'llm'} and all(fp[k] for k in ('catalogue', 'texts', 'split', 'llm'))

def test_a_model_trained_on_other_events_of_the_same_catalogue_is_refused(tmp_path, capsys):
    "model.safetensors and config.json of another run on the same catalogue (other users and events): refused."
    runs = {}
    for users in (12, 14):
        d = tmp_path / f'u{users}'
        d.mkdir()
        log = write_csv(d / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS, n_users=users))
        assert cli(capsys, 'train', '--interactions', log, *QUICK, '--out', d / 'run')[0] == 0
        runs[users] = d / 'run'
    mixed = tmp_path / 'mixed'
    shutil.copytree(runs[12], mixed)
    for f in ('config.json', 'model.safetensors'): shutil.copy(runs[14] / f, mixed / f)
    refused(cli(capsys, 'evaluate', mixed), 'split.npz has another split (users and events)', 'mixes files of two runs')
    refused(cli(capsys, 'recommend', mixed, '--user', 'u0'), 'another split (users and events)')
    model = load_run(runs[12])[0]                               # the tracker checks the split it is given too
    with pytest.raises(ValueError, match=r'the split has another split \(users and events\)'):
        InterestTracker(model, SplitData.load(runs[14] / 'split'))
    InterestTracker(model, SplitData.load(runs[12] / 'split'))
    (mixed / 'items.csv.gz').write_bytes((runs[14] / 'items.csv.gz').read_bytes())   # same texts: still refused
    shutil.copy(runs[12] / 'config.json', mixed / 'config.json')
    shutil.copy(runs[12] / 'model.safetensors', mixed / 'model.safetensors')
    assert cli(capsys, 'evaluate', mixed)[0] == 0                                     # its own parts again: fine
    pd.DataFrame(dict(item=ITEMS, text=[f'other text {i}' for i in ITEMS])).to_csv(mixed / 'items.csv.gz', index=False)
    refused(cli(capsys, 'evaluate', mixed), 'items.csv.gz has another item texts')

def test_recommend_texts_with_a_replaced_or_moved_language_model(tmp_path, capsys, bert_dir, cache):
    "The language model folder replaced by another model of the same width: refused; moved: `--llm-model` finds it."
    from interest_llm.llm import make_tiny_model
    lm = tmp_path / 'lm'
    shutil.copytree(bert_dir, lm)
    run = tmp_path / 'run'
    assert cli(capsys, *texts_train(tmp_path, lm), '--out', run)[0] == 0
    ask = ['recommend', run, '--texts', 'a green tea cup', '-k', '3']
    code, out, err = cli(capsys, *ask)
    assert code == 0, err
    shutil.move(lm, tmp_path / 'kept')
    make_tiny_model(lm, 'bert', seed=1)                                       # same width, other weights
    refused(cli(capsys, *ask), f'the language model {lm} has another language model than the one {run} was trained',
            '--llm-model')
    shutil.rmtree(lm)                                                         # moved away
    line = refused(cli(capsys, *ask), f'the language model of {run} cannot be loaded', 'pass --llm-model')
    assert 'Traceback' not in line
    code, out2, err = cli(capsys, *ask, '--llm-model', tmp_path / 'kept')     # the fix, followed
    assert code == 0 and out2 == out, err

def test_a_run_folder_of_the_previous_release_is_read(trained, tmp_path, capsys):
    "config.json without a fingerprint, without options newer than it (model config fields, `args`): read as before."
    run, _, _ = trained
    code, out, err = cli(capsys, 'evaluate', run)
    assert code == 0, err
    old = tmp_path / 'old'
    shutil.copytree(run, old)
    cfg = json.loads((old / 'config.json').read_text())
    for k in ('fingerprint', 'args'): cfg.pop(k)
    for k in ('combine', 'n_experts', 'sampler'): cfg['model_config'].pop(k)   # options made after this folder
    (old / 'config.json').write_text(json.dumps(cfg))
    code, out_old, err = cli(capsys, 'evaluate', old)
    assert code == 0, err
    assert json.loads(out_old)['ndcg@10'] == json.loads(out)['ndcg@10']
    (old / 'config.json').write_text(json.dumps(dict(cfg, args={'llm_model': None})))   # args without max_len
    assert cli(capsys, 'recommend', old, '--user', 'u0', '-k', '2')[0] == 0

def test_out_is_never_the_current_folder_or_above(tmp_path, capsys, monkeypatch):
    "`train --out .` (./, $PWD, .., /): refused before anything is written; the suggested --out works."
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    here = tmp_path / 'here'
    here.mkdir()
    monkeypatch.chdir(here)                                   # an empty current folder: the worst case
    for out in ('.', './', str(here), '..', '/'):
        refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', out),
                'is the current folder, a folder above it or /', '--out runs/my-run')
    assert here.is_dir() and not list(here.iterdir()) and not (tmp_path / 'here.partial').exists()
    assert cli(capsys, 'train', '--interactions', log, *QUICK, '--out', 'runs/my-run')[0] == 0
    assert (here / 'runs' / 'my-run' / 'metrics.json').exists()

def test_a_failed_run_leaves_no_empty_folders_behind(tmp_path, capsys):
    "A run that fails before its first checkpoint removes its working folder and the folders made for it, nothing else."
    bad = write_csv(tmp_path / 'bad.csv', ('user', 'thing', 'timestamp'), log_rows(ITEMS))   # no item column
    (tmp_path / 'kept').mkdir()
    for out in ('deep/er/run', 'kept/run'):
        code, _, err = cli(capsys, 'train', '--interactions', bad, *QUICK, '--out', tmp_path / out)
        assert code != 0 and 'item' in err, err
    assert not (tmp_path / 'deep').exists()
    assert (tmp_path / 'kept').is_dir() and not list((tmp_path / 'kept').iterdir())   # it was there before: it stays

def test_a_foreign_partial_folder_is_never_emptied(tmp_path, capsys):
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    (tmp_path / 'run.partial').mkdir()
    (tmp_path / 'run.partial' / 'thesis.tex').write_text('years of work')
    refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run'),
            'was not made by `interest-llm train`', 'another --out')
    assert (tmp_path / 'run.partial' / 'thesis.tex').read_text() == 'years of work'

def test_a_run_being_trained_is_not_called_interrupted(tmp_path, capsys, monkeypatch):
    "While another process holds the lock of RUN.partial, evaluate and train say so; once it ends: interrupted."
    log = write_csv(tmp_path / 'log.csv', ('user', 'item', 'timestamp'), log_rows(ITEMS))
    run = tmp_path / 'run'
    interrupt(capsys, monkeypatch, ['train', '--interactions', log, *QUICK, '--out', run])
    holder = subprocess.Popen([sys.executable, '-c', 'import fcntl, sys, time; f = open(sys.argv[1], "a");'
                               ' fcntl.flock(f, fcntl.LOCK_EX); f.truncate(0); f.write("4242"); f.flush();'
                               ' print("locked", flush=True); time.sleep(60)', str(partial_dir(run) / '.lock')],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        refused(cli(capsys, 'evaluate', run), 'is being trained right now by process 4242', 'wait for it')
        refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', run, '--resume'),
                'is being trained right now by process 4242')
        refused(cli(capsys, 'train', '--interactions', log, *QUICK, '--out', run), 'is being trained right now')
    finally: holder.kill(); holder.wait()
    refused(cli(capsys, 'evaluate', run), 'is an interrupted run', '--resume')

@contextlib.contextmanager
def read_only(folder):
    "`folder` read-only, even for root (the immutable attribute)."
    if os.geteuid() == 0:
        if subprocess.run(['chattr', '+i', str(folder)], capture_output=True).returncode != 0:
            pytest.skip('chattr +i is not available here')
        try: yield
        finally: subprocess.run(['chattr', '-i', str(folder)])
    else:
        folder.chmod(0o555)
        try: yield
        finally: folder.chmod(0o755)

def test_evaluate_a_read_only_run_folder_shows_the_metrics(trained, tmp_path, capsys):
    run, _, _ = trained
    ro = tmp_path / 'ro'
    shutil.copytree(run, ro)
    with read_only(ro):
        code, out, err = cli(capsys, 'evaluate', ro)
    refused((code, out, err), f'could not save {ro / "eval-test.json"}', 'shown above', 'writable')
    assert 0 <= json.loads(out)['ndcg@10'] <= 1                       # computed, and shown
    assert cli(capsys, 'evaluate', ro)[0] == 0 and (ro / 'eval-test.json').exists()   # the fix, followed

def _children(pid) -> list:
    "The process ids whose parent is `pid` and whose command line says multiprocessing spawned them."
    out = []
    for p in Path('/proc').iterdir():
        try:
            stat, cmd = (p / 'stat').read_text(), (p / 'cmdline').read_bytes()
            if int(stat.rsplit(')', 1)[1].split()[1]) == pid and b'multiprocessing' in cmd: out.append(int(p.name))
        except (OSError, ValueError, IndexError): pass
    return out

def _gone(pid, timeout=20) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if (Path('/proc') / str(pid) / 'stat').read_text().rsplit(')', 1)[1].split()[0] == 'Z': return True
        except OSError: return True
        time.sleep(0.2)
    return False

@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG and /proc are Linux')
@pytest.mark.parametrize('sig', [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_the_baseline_process_ends_with_train(sig, tmp_path):
    "Killed, terminated or interrupted, `train` takes its baseline process with it; SIGTERM and Ctrl-C say so in a line."
    cmd = [sys.executable, '-c', 'from interest_llm.cli import main; main()', 'train', '--dataset', 'simulated',
           '--quick', '--no-llm', '--baselines', 'gru4rec', '--threads', '2', '--epochs', '100000', '--patience', '100000',
           '--no-progress', '--out', str(tmp_path / 'run')]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS='2'),    # a runner started in the background ignores
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))   # SIGINT: not train
    try:
        end, kids = time.time() + 120, []
        while not kids and time.time() < end and p.poll() is None:
            time.sleep(0.5)
            kids = _children(p.pid)
        assert kids, f'no baseline process appeared: {p.poll()} {p.stderr.read() if p.poll() is not None else ""}'
        time.sleep(2)                                        # it trains now
        os.kill(p.pid, sig)
        code = p.wait(timeout=60)
        assert all(_gone(k) for k in kids), 'the baseline process outlived train'
    finally:
        if p.poll() is None: p.kill()
    err = p.stderr.read()
    if sig != signal.SIGKILL:
        assert code == {signal.SIGTERM: 143, signal.SIGINT: 130}[sig] and 'Traceback' not in err, err
        lines = [l for l in err.splitlines() if l.startswith('interest-llm')]
        assert len(lines) == 1 and lines[0].startswith('interest-llm: interrupted'), err
