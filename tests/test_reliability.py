"""Reliability tests (issue 6): untrusted files, atomic checkpoints, NaN guard, determinism, interruption and
resume, and a clear error (or a documented, reported repair) for bad input at every public entry point.

Each bad-input case checks the message names the problem (`pytest.raises(..., match=...)`).
Run: `pytest tests/test_reliability.py -q` (about a minute on 2 cores).
"""
import io, json, os, re, signal, subprocess, sys, tarfile, time, zipfile, warnings
from pathlib import Path

import numpy as np, pandas as pd, pytest, torch
from torch import nn

import interest_llm
from interest_llm import data, train
from interest_llm.data import leave_one_out, make_loader, simulate_drift, validate_interactions, SeqDataset
from interest_llm.train import TrainConfig, fit, load_checkpoint, CheckpointError, save_model, load_model_weights

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / 'interest_llm'

# ------------------------------------------------------------------------------------------------ helpers
from tiny_model import Tiny, TinyCfg        # tests/tiny_model.py

@pytest.fixture(autouse=True, scope='module')
def one_thread():
    "One torch thread in this process (as OMP_NUM_THREADS=1 in the subprocesses): small models on a shared 2-core machine."
    nt = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(nt)

@pytest.fixture(scope='module')
def sim():
    inter, items, _ = simulate_drift(n_users=40, n_items=48, n_topics=4, n_steps=(6, 14), seed=0)
    return inter, items, leave_one_out(inter, n_negatives=0)

def tiny(split, seed=0, **kw): torch.manual_seed(seed); return Tiny(TinyCfg(split.n_items), **kw)
def tcfg(**kw): return TrainConfig(**{**dict(epochs=3, batch_size=16, lr=1e-2, max_len=8, patience=10, seed=0, progress=False), **kw})

# ------------------------------------------------------------------------------------------------ untrusted files
def _code_lines(path):
    "Source lines without comments and docstring-only lines."
    for i, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        code = line.split('#', 1)[0]
        if code.strip(): yield i, code

def test_no_pickle_and_torch_load_weights_only():
    "Weights travel only as safetensors: no pickle import, no torch.load without weights_only=True, no allow_pickle=True."
    bad = []
    for f in sorted(PKG.glob('*.py')):
        src = f.read_text(encoding='utf-8')
        for m in re.finditer(r'torch\.load\(', src):               # the whole call, even across lines
            depth, j = 0, m.end() - 1
            while j < len(src):
                depth += src[j] == '('; depth -= src[j] == ')'
                if depth == 0: break
                j += 1
            if not re.search(r'weights_only\s*=\s*True', src[m.start():j]): bad.append(f'{f.name}: {src[m.start():j + 1]!r}')
        for i, code in _code_lines(f):
            if re.search(r'\bimport\s+(c?pickle|dill|joblib)\b|\bfrom\s+(c?pickle|dill|joblib)\s+import|\bpickle\.(loads?|dumps?)\(', code):
                bad.append(f'{f.name}:{i}: {code.strip()}')
            if re.search(r'allow_pickle\s*=\s*True', code): bad.append(f'{f.name}:{i}: {code.strip()}')
    assert not bad, 'unsafe deserialisation:\n' + '\n'.join(bad)

def test_grep_detects_unsafe_code(tmp_path, monkeypatch):
    "The scanner above is not vacuous: it flags a file that uses pickle or torch.load without weights_only."
    (tmp_path / 'bad.py').write_text("import pickle\nx = torch.load(\n  'f.pt')\n")
    monkeypatch.setattr(sys.modules[__name__], 'PKG', tmp_path)
    with pytest.raises(AssertionError, match=r"import pickle[\s\S]*torch\.load"): test_no_pickle_and_torch_load_weights_only()

def test_trust_remote_code_off_by_default():
    import inspect
    from interest_llm import llm
    for fn in (llm.TextEncoder.__init__, llm.load_hf):
        assert inspect.signature(fn).parameters['trust_remote_code'].default is False, fn

def test_checkpoint_files_are_safetensors_and_json(sim, tmp_path):
    _, _, sp = sim
    fit(tiny(sp), sp, tcfg(epochs=2, checkpoint_dir=str(tmp_path / 'ck')))
    save_model(tiny(sp), str(tmp_path / 'm'))
    files = [p.name for p in tmp_path.rglob('*') if p.is_file()]
    assert files and all(f.endswith(('.safetensors', '.json')) for f in files), files
    for p in tmp_path.rglob('*.safetensors'): assert p.read_bytes()[8:9] == b'{'   # safetensors header, not a zip/pickle

# ------------------------------------------------------------------------------------------------ atomic checkpoints
class Crash(RuntimeError): pass

def test_crash_while_saving_tensors_keeps_previous_checkpoint(sim, tmp_path, monkeypatch):
    "The tensor writer dies half-way through epoch 3's checkpoint: last.json still points to epoch 2, loadable."
    _, _, sp = sim; d = str(tmp_path / 'ck')
    fit(tiny(sp), sp, tcfg(epochs=2, checkpoint_dir=d))
    before = json.load(open(os.path.join(d, 'last.json')))
    real = train.save_file
    def half_write(tensors, path, metadata=None):
        real(tensors, path, metadata=metadata)
        with open(path, 'r+b') as f: f.truncate(os.path.getsize(path) // 2)   # a torn write ...
        raise Crash('disk full')                                             # ... then the process dies
    monkeypatch.setattr(train, 'save_file', half_write)
    with pytest.raises(Crash): fit(tiny(sp), sp, tcfg(epochs=3, checkpoint_dir=d, resume=True))
    monkeypatch.undo()
    meta = load_checkpoint(d, tiny(sp))
    assert meta['epoch'] == 2 and meta['file'] == before['file'] and meta['sha256'] == before['sha256']
    assert not [f for f in os.listdir(d) if '.tmp' in f], os.listdir(d)      # the torn temporary file was removed
    r = fit(tiny(sp), sp, tcfg(epochs=3, checkpoint_dir=d, resume=True))        # and training can go on from it
    assert [h['epoch'] for h in r.history] == [1, 2, 3]

def test_crash_while_writing_last_json_keeps_previous_checkpoint(sim, tmp_path, monkeypatch):
    _, _, sp = sim; d = str(tmp_path / 'ck')
    fit(tiny(sp), sp, tcfg(epochs=2, checkpoint_dir=d))
    real = train.json.dump
    def torn(obj, f, **kw):
        if isinstance(obj, dict) and obj.get('epoch') == 3: f.write(json.dumps(obj, **{k: v for k, v in kw.items() if k != 'cls'})[:40]); raise Crash('killed')
        return real(obj, f, **kw)
    monkeypatch.setattr(train.json, 'dump', torn)
    with pytest.raises(Crash): fit(tiny(sp), sp, tcfg(epochs=3, checkpoint_dir=d, resume=True))
    monkeypatch.undo()
    assert load_checkpoint(d, tiny(sp))['epoch'] == 2

# ------------------------------------------------------------------------------------------------ numerics
def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(sim, tmp_path):
    _, _, sp = sim; d = str(tmp_path / 'ck')
    steps = len(make_loader(sp, 'train', batch_size=16, max_len=8))
    m = tiny(sp, nan_at=2 * steps + 3)                                         # NaN in the 3rd epoch
    with pytest.warns(UserWarning, match=r'non-finite loss in epoch 3 .*kept the weights of epoch'):
        r = fit(m, sp, tcfg(epochs=5, checkpoint_dir=d))
    assert r.status == 'non-finite' and [h['epoch'] for h in r.history] == [1, 2]
    assert load_checkpoint(d, tiny(sp))['epoch'] == 2
    assert all(torch.isfinite(p).all() for p in m.parameters())

# ------------------------------------------------------------------------------------------------ archives, downloads
def _zip_with(tmp_path, name, member, data=b'x', symlink_to=None):
    p = tmp_path / name
    with zipfile.ZipFile(p, 'w') as z:
        z.writestr('ok/readme.txt', b'fine')
        zi = zipfile.ZipInfo(member)
        if symlink_to is not None: zi.external_attr = (0o120777 << 16); data = symlink_to.encode()
        z.writestr(zi, data)
    return p

def _tar_with(tmp_path, name, member, kind='file', target=''):
    p = tmp_path / name
    with tarfile.open(p, 'w:gz') as t:
        ok = tarfile.TarInfo('ok/readme.txt'); ok.size = 4; t.addfile(ok, io.BytesIO(b'fine'))
        ti = tarfile.TarInfo(member)
        if kind == 'file': ti.size = 4; t.addfile(ti, io.BytesIO(b'evil'))
        else: ti.type = tarfile.SYMTYPE if kind == 'symlink' else tarfile.LNKTYPE; ti.linkname = target; t.addfile(ti)
    return p

@pytest.mark.parametrize('member', ['../evil.txt', 'ok/../../evil.txt', '/tmp/evil-abs.txt', 'C:/evil.txt'])
def test_safe_extract_refuses_traversal_zip_and_tar(tmp_path, member):
    dest = tmp_path / 'dest'
    for arch in (_zip_with(tmp_path, 'a.zip', member), _tar_with(tmp_path, 'a.tgz', member)):
        with pytest.raises(ValueError, match=r'unsafe archive member'): data.safe_extract(arch, dest)
    assert not (tmp_path / 'evil.txt').exists() and not Path('/tmp/evil-abs.txt').exists()
    assert not (dest / 'ok' / 'readme.txt').exists(), 'nothing may be extracted from a malicious archive'

@pytest.mark.parametrize('kind', ['symlink', 'hardlink'])
def test_safe_extract_refuses_tar_links(tmp_path, kind):
    arch = _tar_with(tmp_path, 'l.tgz', 'ok/link', kind=kind, target='/etc/passwd')
    with pytest.raises(ValueError, match=r'unsafe archive member .*link'): data.safe_extract(arch, tmp_path / 'dest')
    assert not (tmp_path / 'dest' / 'ok' / 'link').exists()

def test_safe_extract_zip_symlink_is_not_a_link(tmp_path):
    "zipfile never creates symlinks: a symlink entry must end up (at most) as a plain file inside dest."
    arch = _zip_with(tmp_path, 's.zip', 'ok/link', symlink_to='/etc/passwd')
    try: dest = data.safe_extract(arch, tmp_path / 'dest')
    except ValueError as e: assert 'unsafe archive member' in str(e); return
    assert not (dest / 'ok' / 'link').is_symlink() and (dest / 'ok' / 'link').read_bytes() == b'/etc/passwd'

def test_safe_extract_extracts_good_archive_and_refuses_non_archive(tmp_path):
    good = tmp_path / 'g.zip'
    with zipfile.ZipFile(good, 'w') as z: z.writestr('d/u.data', b'1\t2\t3\t4\n')
    assert (data.safe_extract(good, tmp_path / 'out') / 'd' / 'u.data').read_bytes() == b'1\t2\t3\t4\n'
    (tmp_path / 'x.zip').write_bytes(b'not an archive')
    with pytest.raises(ValueError, match='not a zip or tar archive'): data.safe_extract(tmp_path / 'x.zip', tmp_path / 'o2')

def test_download_without_network_is_a_clear_error(tmp_path, monkeypatch):
    import urllib.request, urllib.error
    def offline(*a, **k): raise urllib.error.URLError('no network')
    monkeypatch.setattr(urllib.request, 'urlopen', offline)
    with pytest.raises(FileNotFoundError, match=r'could not be downloaded .*Download it by hand'):
        data.download_movielens('ml-100k', cache=tmp_path)
    assert not list(tmp_path.glob('*.zip*')), 'no partial download may be left behind'

def test_download_with_wrong_checksum_is_refused(tmp_path):
    "A cached archive whose MD5 differs from GroupLens' published one is removed, never extracted."
    fake = tmp_path / 'ml-100k.zip'
    with zipfile.ZipFile(fake, 'w') as z: z.writestr('ml-100k/u.data', b'1\t2\t3\t4\n')
    with pytest.raises(ValueError, match='MD5 differs'): data.download_movielens('ml-100k', cache=tmp_path)
    assert not fake.exists() and not (tmp_path / 'ml-100k').exists()

# ------------------------------------------------------------------------------------------------ bad input: data
def _df(**kw):
    d = dict(user=['u1', 'u1', 'u1', 'u2'], item=['a', 'b', 'c', 'a'], timestamp=np.array([1, 2, 3, 4], dtype=np.int64))
    d.update(kw); return pd.DataFrame(d)

@pytest.mark.parametrize('df, msg', [
    (pd.DataFrame({'user': ['u'], 'itme': ['a'], 'timestamp': [1]}), r"missing column 'item' \(did you mean 'itme'\?\)"),
    (_df().iloc[:0], r'empty \(0 rows\)'),
    (_df(user=['u1', None, 'u1', 'u2']), r"column 'user' has 1 missing \(NaN\) ids"),
    (_df(item=[1, 2, 3, 4]), r"column 'item' must hold str ids"),
    (_df(timestamp=['2020-01-01'] * 4), r"column 'timestamp' must be int64 Unix seconds"),
    (_df(rating=['x', 'y', 'z', 'w']), r"column 'rating' must be numeric"),
    ('not a frame', r'must be a pandas DataFrame'),
])
def test_validate_interactions_names_the_problem(df, msg):
    with pytest.raises(ValueError, match=msg): validate_interactions(df)

def test_coerce_repairs_types_and_reports_bad_times():
    fixed = validate_interactions(_df(item=[1, 2, 3, 4], timestamp=['2020-01-01'] * 4), coerce=True)
    assert fixed['item'].tolist() == ['1', '2', '3', '4'] and fixed['timestamp'].dtype == np.int64
    with pytest.raises(ValueError, match=r"timestamp: 1 unparseable value\(s\), e.g. row 2: 'yesterday'"):
        validate_interactions(_df(timestamp=['2020-01-01', '2020-01-02', 'yesterday', '2020-01-04']), coerce=True)
    with pytest.raises(ValueError, match=r'timestamp: 1 missing \(NaN\) values'):
        validate_interactions(_df(timestamp=[1.0, np.nan, 3.0, 4.0]), coerce=True)

def test_split_and_loader_bad_input(sim):
    inter, _, sp = sim
    with pytest.raises(ValueError, match='empty'): leave_one_out(inter.iloc[:0])
    with pytest.raises(ValueError, match=r'fewer than n_negatives=100 unseen items'): leave_one_out(_df())
    with pytest.raises(ValueError, match="stage must be 'train', 'valid' or 'test'"): make_loader(sp, 'tset')
    with pytest.raises(ValueError, match='max_len must be >= 1'): SeqDataset(sp, 0)
    short = leave_one_out(_df(user=['u1', 'u1', 'u2', 'u2']), n_negatives=0)     # nobody has 3 events
    with pytest.raises(ValueError, match=r"has 2 events: no test target"): short.example(0, 'test')
    assert len(SeqDataset(short, 5, 'test')) == 0

def test_loaders_missing_files_and_unknown_names(tmp_path):
    with pytest.raises(ValueError, match=r"unknown data set 'ml100k' \(did you mean 'ml-100k'\?\)"): data.load_dataset('ml100k')
    for fn in (data.load_table, data.load_online_retail, data.load_recbole):
        with pytest.raises((FileNotFoundError, ValueError), match=r'no-such|not found|does not exist|No such'):
            fn(tmp_path / 'no-such.csv')

def test_load_table_bad_content(tmp_path):
    p = tmp_path / 'log.csv'
    p.write_text('uid,iid,when\n1,10,2020-01-01\n2,11,not-a-date\n')
    with pytest.raises(ValueError, match=r"unparseable value\(s\), e.g. row 1: 'not-a-date'"):
        data.load_table(p, columns={'user': 'uid', 'item': 'iid', 'timestamp': 'when'})
    with pytest.raises(ValueError, match=r"'user'"): data.load_table(p, columns={'user': 'nope', 'item': 'iid', 'timestamp': 'when'})

def test_items_without_text(sim):
    from interest_llm.llm import embed_catalogue, make_tiny_model, TextEncoder
    _, items, sp = sim
    with pytest.raises(ValueError, match=r"1 items have no text, e.g. 'i0000'"):
        data.validate_items(items.assign(text=[None] + items.text.tolist()[1:]), missing_text='error')
    rep = data.CleaningReport()
    fixed = data.validate_items(items.assign(text=[None] + items.text.tolist()[1:]), report=rep)   # documented repair, reported
    assert fixed.text.iloc[0] == items.title.iloc[0] and 'items without text' in rep.to_frame().step.tolist()
    cat = items[items.item != sp.item_ids[3]]
    enc = TextEncoder(make_tiny_model(Path(os.environ.get('TMPDIR', '/tmp')) / f'tiny-bert-{os.getpid()}'))
    with pytest.raises(ValueError, match=r'1 of \d+ items have no text in the catalogue'):
        embed_catalogue(sp, cat, encoder=enc, use_cache=False, on_missing='error')
    with pytest.warns(UserWarning, match='their item id is used as their text'):
        embed_catalogue(sp, cat, encoder=enc, use_cache=False)
    with pytest.raises(ValueError, match=r"must start with the padding token"): embed_catalogue(sp.item_ids[1:], items, encoder=enc, use_cache=False)

def test_missing_language_model_path(tmp_path):
    from interest_llm.llm import TextEncoder
    with pytest.raises((FileNotFoundError, ValueError, OSError), match=re.escape(str(tmp_path / 'no-model'))):
        TextEncoder(str(tmp_path / 'no-model'))

# ------------------------------------------------------------------------------------------------ interruption, determinism (CLI)
def _cli_args(ck, out, epochs=4):
    return ['--data', 'simulate', '--sim-users', '80', '--sim-items', '64', '--sim-steps', '10,30', '--epochs', str(epochs),
            '--batch-size', '8', '--max-len', '12', '--n-negatives', '0', '--patience', '10', '--seed', '3',
            '--item-repr', 'id', '--set', 'dropout=0.2', '--checkpoint-dir', str(ck), '--out', str(out)]

def _env():
    return {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join([str(REPO), *sys.path])}

def _in_process(argv):
    from interest_llm.distributed import main
    nt = torch.get_num_threads(); torch.set_num_threads(1)
    try: return main(argv)
    finally: torch.set_num_threads(nt)

def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    "`python -m interest_llm.distributed` killed with SIGKILL during epoch 2 resumes to the uninterrupted result."
    pytest.importorskip('interest_llm.model')
    ck, out = tmp_path / 'ck', tmp_path / 'out'
    p = subprocess.Popen([sys.executable, '-m', 'interest_llm.distributed', *_cli_args(ck, out)], env=_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        t0 = time.time()
        while time.time() - t0 < 120 and p.poll() is None and not (ck / 'last.json').exists(): time.sleep(0.02)
        assert p.poll() is None, f'training ended before it could be killed: {p.stderr.read().decode()[-2000:]}'
        os.kill(p.pid, signal.SIGKILL); p.wait(timeout=30)
    finally:
        if p.poll() is None: os.kill(p.pid, signal.SIGKILL)
    done = json.load(open(ck / 'last.json'))['epoch']
    assert p.returncode == -signal.SIGKILL and 1 <= done < 4 and not (out / 'metrics.json').exists()
    r = subprocess.run([sys.executable, '-m', 'interest_llm.distributed', *_cli_args(ck, out), '--resume'], env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    resumed = json.load(open(out / 'metrics.json'))
    ref = _in_process(_cli_args(tmp_path / 'ck-ref', tmp_path / 'out-ref'))
    assert [h['valid'] for h in resumed['history']] == [h['valid'] for h in ref['history']]
    assert resumed['test'] == ref['test'] and resumed['best_epoch'] == ref['best_epoch']

def test_same_seed_same_metrics_run_after_run(tmp_path):
    "Determinism on CPU: the full pipeline (data, model with dropout and VAE sampling, training) twice -> identical."
    pytest.importorskip('interest_llm.model')
    a = _in_process(_cli_args(tmp_path / 'c1', tmp_path / 'o1', epochs=2))
    b = _in_process(_cli_args(tmp_path / 'c2', tmp_path / 'o2', epochs=2))
    assert a['history'][-1]['train'] == b['history'][-1]['train'] and a['test'] == b['test']
    assert [h['valid'] for h in a['history']] == [h['valid'] for h in b['history']]

def test_fit_bad_input(sim, tmp_path):
    _, _, sp = sim
    with pytest.raises(ValueError, match=r'lr must be > 0'): tcfg(lr=0)
    with pytest.raises(ValueError, match=r"scheduler must be 'none', 'cosine' or 'plateau', got 'cos'"): tcfg(scheduler='cos')
    with pytest.raises(ValueError, match=r'resume=True needs checkpoint_dir'): fit(tiny(sp), sp, tcfg(resume=True))
    short = leave_one_out(_df(user=['u1', 'u1', 'u2', 'u2']), n_negatives=0)        # nobody has a validation target
    with pytest.raises(ValueError, match=r'split has no valid targets \(every user has < 3 events\)'):
        fit(tiny(short), short, tcfg(epochs=1))
    with pytest.raises(CheckpointError, match=r'no checkpoint in .*last.json missing'): load_checkpoint(str(tmp_path / 'empty'), tiny(sp))
    from interest_llm.distributed import fit_distributed
    single = leave_one_out(_df(user=['u1', 'u2', 'u3', 'u4']), n_negatives=0)      # one event per user: nothing to train on
    with pytest.raises(ValueError, match=r'no training windows: every user has fewer than 2 training events'):
        fit_distributed(tiny(single), single, tcfg(epochs=1))

# ------------------------------------------------------------------------------------------------ bad input: model, tracker, CLI
def _interest_model(sp, text=True, **kw):
    from interest_llm.model import InterestModel, ModelConfig
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(sp.n_items + 1, 16), dim=1) if text else None
    if emb is not None: emb[0] = 0
    cfg = ModelConfig(n_items=sp.n_items, text_dim=16 if text else None, emb_dim=16, hidden_dim=16, latent_dim=8, max_len=8, **kw)
    return InterestModel(cfg, emb, item_ids=sp.item_ids), emb

def test_recommend_bad_input(sim):
    pytest.importorskip('interest_llm.model')
    _, _, sp = sim
    m, _ = _interest_model(sp)
    known = [str(i) for i in sp.item_ids[1:4]]
    with pytest.raises(ValueError, match=r"unknown item ids .*'no-such-item'"): m.recommend(known + ['no-such-item'])
    with pytest.raises(ValueError, match=r'history is empty'): m.recommend([])
    with pytest.raises(ValueError, match=r"unknown item ids .*'<pad>'"): m.recommend(['<pad>'])
    with pytest.raises(ValueError, match=r'k must be >= 1'): m.recommend(known, k=0)
    with pytest.raises(ValueError, match=r'times has 2 entries for a history of 3'): m.recommend(known, times=[1, 2])
    with pytest.raises(ValueError, match=r"could not convert string to float: 'noon'"): m.recommend(known, times=[1, 2, 'noon'])
    with pytest.raises(ValueError, match=r'no encoder'): m.recommend(known, texts=['a brand-new item'])
    # a history longer than max_len: documented repair = the most recent max_len events are used
    long = [str(sp.item_ids[1 + (j % sp.n_items)]) for j in range(40)]
    pd.testing.assert_frame_equal(m.recommend(long, k=5), m.recommend(long[-8:], k=5))

def test_model_rejects_bad_text_embedding_shape(sim):
    pytest.importorskip('interest_llm.model')
    from interest_llm.model import InterestModel, ModelConfig
    _, _, sp = sim
    cfg = ModelConfig(n_items=sp.n_items, text_dim=16, emb_dim=16, hidden_dim=16, latent_dim=8)
    with pytest.raises(ValueError, match=r'text_emb must be \(n_items\+1, text_dim\)'): InterestModel(cfg, torch.zeros(sp.n_items, 16))
    with pytest.raises(ValueError, match=r"needs text_emb"): InterestModel(cfg, None)
    with pytest.raises(ValueError, match=r"item_repr must be 'text', 'id' or 'both'"): ModelConfig(n_items=3, item_repr='ids')

def test_nan_in_text_embedding_is_a_clear_error(sim):
    pytest.importorskip('interest_llm.model')
    from interest_llm.model import InterestModel, ModelConfig
    _, _, sp = sim
    emb = torch.randn(sp.n_items + 1, 16); emb[5, 3] = float('nan')
    with pytest.raises(ValueError, match=r'(?i)text_emb.*(nan|non-finite)'):
        InterestModel(ModelConfig(n_items=sp.n_items, text_dim=16, emb_dim=16, hidden_dim=16, latent_dim=8), emb)

def test_nan_loss_in_interest_model_stops_training(sim, tmp_path):
    "An InterestModel whose loss turns NaN at training step k: fit and fit_distributed stop, keep epoch 1's checkpoint."
    pytest.importorskip('interest_llm.model')
    from interest_llm.distributed import fit_distributed
    _, _, sp = sim
    steps = len(make_loader(sp, 'train', batch_size=16, max_len=8))
    for trainer in (fit, fit_distributed):
        m, _ = _interest_model(sp); real, n = m.forward, [0]
        def poisoned(b, **kw):
            out = real(b, **kw); n[0] += 1
            if n[0] == steps + 2: out['loss'] = out['loss'] * float('nan')       # 2nd step of epoch 2
            return out
        m.forward = poisoned
        d = str(tmp_path / trainer.__name__)
        with pytest.warns(UserWarning, match=r'non-finite loss in epoch 2 \(loss is nan at step 1\); kept the weights of epoch 1'):
            r = trainer(m, sp, tcfg(epochs=3, checkpoint_dir=d))
        assert r.status == 'non-finite' and r.best_epoch == 1 and load_checkpoint(d, _interest_model(sp)[0])['epoch'] == 1
        assert all(torch.isfinite(p).all() for p in m.parameters())

def test_model_checkpoint_other_config_truncated_missing(sim, tmp_path):
    "Weights of another configuration, a truncated weights file and a missing folder each give a clear error."
    pytest.importorskip('interest_llm.model')
    _, _, sp = sim
    m, _ = _interest_model(sp)
    save_model(m, str(tmp_path / 'run'))
    with pytest.raises(CheckpointError, match=r'different model configuration: .*hidden_dim=16'):
        from interest_llm.model import InterestModel, ModelConfig
        load_model_weights(InterestModel(ModelConfig(n_items=sp.n_items, emb_dim=16, hidden_dim=32, latent_dim=8, max_len=8)), str(tmp_path / 'run'))
    f = tmp_path / 'run' / 'model.safetensors'
    f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match=r'model.safetensors is truncated or corrupt'): load_model_weights(_interest_model(sp)[0], str(tmp_path / 'run'))
    with pytest.raises(CheckpointError, match=r'cannot read .*no-such-run/config.json'): load_model_weights(m, str(tmp_path / 'no-such-run'))

def test_from_pretrained_truncated_names_the_file(sim, tmp_path):
    pytest.importorskip('interest_llm.model')
    from interest_llm.model import InterestModel
    _, _, sp = sim
    m, _ = _interest_model(sp); m.save_pretrained(tmp_path / 'pre')
    f = tmp_path / 'pre' / 'model.safetensors'; f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(ValueError, match=r'model\.safetensors.*(truncated|corrupt)'): InterestModel.from_pretrained(tmp_path / 'pre')

def test_from_pretrained_missing_folder(tmp_path):
    pytest.importorskip('interest_llm.model')
    from interest_llm.model import InterestModel
    with pytest.raises(FileNotFoundError, match=r'no-such/model.safetensors not found'): InterestModel.from_pretrained(tmp_path / 'no-such')

def test_save_pretrained_is_atomic(sim, tmp_path, monkeypatch):
    pytest.importorskip('interest_llm.model')
    import safetensors.torch as st
    from interest_llm.model import InterestModel
    _, _, sp = sim
    a, _ = _interest_model(sp); a.save_pretrained(tmp_path / 'pre')
    real = st.save_file
    def half_write(tensors, path, metadata=None):
        real(tensors, path, metadata=metadata)
        with open(path, 'r+b') as f: f.truncate(os.path.getsize(path) // 2)
        raise Crash('power cut')
    monkeypatch.setattr(st, 'save_file', half_write)
    b, _ = _interest_model(sp); torch.nn.init.zeros_(b.W_p.weight)
    with pytest.raises(Crash): b.save_pretrained(tmp_path / 'pre')
    monkeypatch.undo()
    back = InterestModel.from_pretrained(tmp_path / 'pre')
    torch.testing.assert_close(back.W_p.weight, a.W_p.weight)

def test_tracker_bad_input(sim):
    pytest.importorskip('interest_llm.tracker')
    from interest_llm.tracker import InterestTracker
    _, _, sp = sim
    m, _ = _interest_model(sp)
    with pytest.raises(ValueError, match=r'item_ids has 3 entries but the model scores n_items\+1'): InterestTracker(m, sp.item_ids[:3])
    with pytest.raises(ValueError, match=r'out_of_order must be one of'): InterestTracker(m, sp, out_of_order='sometimes')
    tr = InterestTracker(m, sp, k=5)
    item = str(sp.item_ids[1])
    with pytest.raises(ValueError, match=r"unknown item id 'no-such-item'"): tr.update('u1', 'no-such-item', 1_600_000_000)
    with pytest.raises(ValueError, match=r'timestamp must be Unix seconds or a datetime'): tr.update('u1', item, 'soon')
    with pytest.raises(ValueError, match=r'timestamp must be finite'): tr.update('u1', item, float('nan'))
    with pytest.raises(KeyError, match=r"user 'ghost' has no events yet"): tr.scores('ghost') if hasattr(tr, 'scores') else tr.topk('ghost')
    tr.update('u1', item, 1_600_000_100)
    with pytest.raises(ValueError, match=r"user 'u1': event at 1600000000 is earlier than the previous event"): tr.update('u1', item, 1_600_000_000)

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

def test_distributed_cli_bad_input(tmp_path):
    "The distributed entry point: unknown --set field, wrong value type, unknown data set, resume from a corrupt checkpoint."
    from interest_llm.distributed import main, parse_sets
    pytest.importorskip('interest_llm.model')
    base = ['--data', 'simulate', '--sim-users', '30', '--sim-items', '40', '--sim-steps', '5,10', '--epochs', '1',
            '--item-repr', 'id', '--n-negatives', '0', '--max-len', '6']
    with pytest.raises(ValueError, match=r"unknown ModelConfig field 'hiden_dim'; valid: .*hidden_dim"): _in_process(base + ['--set', 'hiden_dim=8'])
    with pytest.raises(ValueError, match=r"--set hidden_dim: invalid literal for int\(\) with base 10: 'big'"): _in_process(base + ['--set', 'hidden_dim=big'])
    with pytest.raises(ValueError, match=r"unknown data set 'ml100k' \(did you mean 'ml-100k'\?\)"): _in_process(base[:0] + ['--data', 'ml100k'] + base[2:])
    ck = tmp_path / 'ck'
    _in_process(base + ['--checkpoint-dir', str(ck)])
    (ck / 'last.json').write_text('{"format": "interest_llm.checkpoint/1", "epoch"')
    with pytest.raises(CheckpointError, match=r'last.json is truncated or corrupt'): _in_process(base + ['--checkpoint-dir', str(ck), '--resume', '--epochs', '2'])
    with pytest.raises(SystemExit): _in_process(base + ['--item-repr', 'words'])
