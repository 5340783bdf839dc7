"""Run folders through the command line a user runs: an interrupted run is never silently restarted or mixed with
other options or data, a kill during the final write leaves no half run folder, files of two runs are never mixed,
damaged folders are refused with the fix. (Tiny configuration: `--quick --no-llm --epochs 1`.)"""
import errno, gzip, json, os, shutil
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
    with pytest.raises(KeyboardInterrupt): main(['train', '--interactions', str(log), *QUICK, '--out', str(tmp_path / 'run')])
    monkeypatch.undo()
    capsys.readouterr()
    assert not (tmp_path / 'run').exists() and (partial_dir(tmp_path / 'run') / 'checkpoints' / 'last.json').exists()
    code, _, err = cli(capsys, 'train', '--interactions', log, *QUICK, '--out', tmp_path / 'run', '--resume')
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

