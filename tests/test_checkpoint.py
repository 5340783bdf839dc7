"""Tests of interest_llm.checkpoint: tensor files, the model format (both config.json layouts), training checkpoints,
weights only ever loaded without pickle, and checkpoints that survive a crash while they are written."""
import json, os, re, sys
from pathlib import Path
from dataclasses import dataclass
import pytest, torch
from torch import nn
from safetensors.torch import save_file
from interest_llm import checkpoint
from interest_llm.train import fit
from interest_llm.checkpoint import (CKPT_FORMAT, PRETRAINED_FORMAT, CheckpointError, save_tensors, load_tensors,
                                     model_config, save_model, read_model_config, load_model_weights,
                                     save_checkpoint, load_checkpoint)

pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


@dataclass
class Cfg:
    n_items: int = 6
    dim: int = 4


class Net(nn.Module):
    def __init__(self, cfg=None):
        super().__init__()
        self.cfg = cfg or Cfg()
        self.emb = nn.Embedding(self.cfg.n_items + 1, self.cfg.dim)


def test_tensors_roundtrip_and_corruption(tmp_path):
    path = str(tmp_path / 'x.safetensors')
    sha = save_tensors({'a': torch.arange(4.)}, path)
    assert torch.equal(load_tensors(path, sha)['a'], torch.arange(4.))
    assert os.listdir(tmp_path) == ['x.safetensors']
    with pytest.raises(CheckpointError, match='SHA-256 mismatch'): load_tensors(path, '0' * 64)


def test_read_model_config_save_model_format(tmp_path):
    net = Net()
    save_model(net, str(tmp_path), dict(item_ids=['<pad>', 'a'], dataset='toy'))
    info = read_model_config(str(tmp_path))
    assert info['format'] == CKPT_FORMAT and info['model_class'] == 'Net'
    assert info['model_config'] == {'n_items': 6, 'dim': 4}
    assert info['sha256'] and info['item_ids'] == ['<pad>', 'a'] and info['extra'] == {'dataset': 'toy'}
    back = Net()
    assert load_model_weights(back, str(tmp_path))['dataset'] == 'toy'
    assert torch.equal(back.emb.weight, net.emb.weight)


def test_read_model_config_pretrained_format(tmp_path):
    "The {'config', 'item_ids'} layout InterestModel.save_pretrained wrote."
    net = Net()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / 'model.safetensors'))
    (tmp_path / 'config.json').write_text(json.dumps(dict(config=model_config(net), item_ids=['<pad>', 'x'])))
    info = read_model_config(str(tmp_path))
    assert info['format'] == PRETRAINED_FORMAT and info['model_class'] == 'InterestModel'
    assert info['model_config'] == model_config(net) and info['sha256'] is None
    assert info['item_ids'] == ['<pad>', 'x'] and info['extra'] == {}
    back = Net()
    load_model_weights(back, str(tmp_path))
    assert torch.equal(back.emb.weight, net.emb.weight)


def test_read_model_config_refuses_other_files(tmp_path):
    with pytest.raises(CheckpointError, match='cannot read'): read_model_config(str(tmp_path))
    (tmp_path / 'config.json').write_text('{"format": "something/9"}')
    with pytest.raises(CheckpointError, match='not a saved model'): read_model_config(str(tmp_path))


def test_model_config_mismatch(tmp_path):
    save_model(Net(), str(tmp_path))
    with pytest.raises(CheckpointError, match='dim=4 \\(model has 8\\)'): load_model_weights(Net(Cfg(dim=8)), str(tmp_path))


@dataclass
class RunCfg:
    lr: float = 0.1
    epochs: int = 2
    scheduler: str = 'none'


def test_checkpoint_roundtrip(tmp_path):
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    net.emb.weight.sum().backward()
    opt.step()
    save_checkpoint(str(tmp_path), net, opt, None, RunCfg(), dict(epoch=1, best_epoch=1, history=[]))
    back = Net()
    opt2 = torch.optim.AdamW(back.parameters(), lr=0.1)
    meta = load_checkpoint(str(tmp_path), back, opt2, cfg=RunCfg(epochs=5))
    assert meta['epoch'] == 1 and torch.equal(back.emb.weight, net.emb.weight)
    assert torch.equal(opt2.state_dict()['state'][0]['exp_avg'], opt.state_dict()['state'][0]['exp_avg'])
    with pytest.raises(CheckpointError, match='different training configuration'):
        load_checkpoint(str(tmp_path), Net(), cfg=RunCfg(lr=0.5))


# ------------------------------------------------------------------------------------------------ no pickle anywhere
REPO = Path(__file__).resolve().parents[1]
PKG = REPO / 'interest_llm'

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


# ------------------------------------------------------------------------------------------------ checkpoints of fit: safe and atomic
def test_checkpoint_files_are_safetensors_and_json(sim, tmp_path, tiny, tcfg):
    _, _, sp = sim
    fit(tiny(sp), sp, tcfg(epochs=2, checkpoint_dir=str(tmp_path / 'ck')))
    save_model(tiny(sp), str(tmp_path / 'm'))
    files = [p.name for p in tmp_path.rglob('*') if p.is_file()]
    assert files and all(f.endswith(('.safetensors', '.json')) for f in files), files
    for p in tmp_path.rglob('*.safetensors'): assert p.read_bytes()[8:9] == b'{'   # safetensors header, not a zip/pickle

class Crash(RuntimeError): pass

def test_crash_while_saving_tensors_keeps_previous_checkpoint(sim, tmp_path, monkeypatch, tiny, tcfg):
    "The tensor writer dies half-way through epoch 3's checkpoint: last.json still points to epoch 2, loadable."
    _, _, sp = sim; d = str(tmp_path / 'ck')
    fit(tiny(sp), sp, tcfg(epochs=2, checkpoint_dir=d))
    before = json.load(open(os.path.join(d, 'last.json')))
    real = checkpoint.save_file
    def half_write(tensors, path, metadata=None):
        real(tensors, path, metadata=metadata)
        with open(path, 'r+b') as f: f.truncate(os.path.getsize(path) // 2)   # a torn write ...
        raise Crash('disk full')                                             # ... then the process dies
    monkeypatch.setattr(checkpoint, 'save_file', half_write)
    with pytest.raises(Crash): fit(tiny(sp), sp, tcfg(epochs=3, checkpoint_dir=d, resume=True))
    monkeypatch.undo()
    meta = load_checkpoint(d, tiny(sp))
    assert meta['epoch'] == 2 and meta['file'] == before['file'] and meta['sha256'] == before['sha256']
    assert not [f for f in os.listdir(d) if '.tmp' in f], os.listdir(d)      # the torn temporary file was removed
    r = fit(tiny(sp), sp, tcfg(epochs=3, checkpoint_dir=d, resume=True))        # and training can go on from it
    assert [h['epoch'] for h in r.history] == [1, 2, 3]

def test_crash_while_writing_last_json_keeps_previous_checkpoint(sim, tmp_path, monkeypatch, tiny, tcfg):
    _, _, sp = sim; d = str(tmp_path / 'ck')
    fit(tiny(sp), sp, tcfg(epochs=2, checkpoint_dir=d))
    from interest_llm import core
    real = checkpoint.write_json
    def torn(obj, path):                                  # last.json of epoch 3 half written, then the process dies
        if isinstance(obj, dict) and obj.get('epoch') == 3:
            def half(tmp):
                Path(tmp).write_text(core.to_json(obj)[:40])
                raise Crash('killed')
            return core.atomic_write(path, half)
        return real(obj, path)
    monkeypatch.setattr(checkpoint, 'write_json', torn)
    with pytest.raises(Crash): fit(tiny(sp), sp, tcfg(epochs=3, checkpoint_dir=d, resume=True))
    monkeypatch.undo()
    assert load_checkpoint(d, tiny(sp))['epoch'] == 2

def test_model_checkpoint_other_config_truncated_missing(sim, tmp_path, interest_model):
    "Weights of another configuration, a truncated weights file and a missing folder each give a clear error."
    pytest.importorskip('interest_llm.model')
    _, _, sp = sim
    m, _ = interest_model(sp)
    save_model(m, str(tmp_path / 'run'))
    with pytest.raises(CheckpointError, match=r'different model configuration: .*hidden_dim=16'):
        from interest_llm.model import InterestModel, ModelConfig
        load_model_weights(InterestModel(ModelConfig(n_items=sp.n_items, emb_dim=16, hidden_dim=32, latent_dim=8, max_len=8)), str(tmp_path / 'run'))
    f = tmp_path / 'run' / 'model.safetensors'
    f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match=r'model.safetensors is truncated or corrupt'): load_model_weights(interest_model(sp)[0], str(tmp_path / 'run'))
    with pytest.raises(CheckpointError, match=r'cannot read .*no-such-run/config.json'): load_model_weights(m, str(tmp_path / 'no-such-run'))


def test_a_checkpoint_older_than_a_model_option_is_read(sim, tmp_path, interest_model):
    "A config made before an option existed is not 'a different model configuration': the training-config check"
    " fills in new options' defaults, and so does the model-config check (as `ModelConfig.from_dict` fills them)."
    from interest_llm.model import InterestModel, ModelConfig
    _, _, sp = sim
    model, emb = interest_model(sp)
    save_model(model, str(tmp_path / 'm'))
    cfg = json.loads((tmp_path / 'm' / 'config.json').read_text())
    for k in ('combine', 'n_experts', 'sampler'): cfg['model_config'].pop(k)   # options newer than the file
    (tmp_path / 'm' / 'config.json').write_text(json.dumps(cfg))
    back = InterestModel(ModelConfig.from_dict(cfg['model_config']), emb, item_ids=sp.item_ids)
    load_model_weights(back, str(tmp_path / 'm'))
    other = InterestModel(ModelConfig(**{**model_config(model), 'n_experts': 2}), emb, item_ids=sp.item_ids)
    with pytest.raises(CheckpointError, match=r'n_experts=1 \(model has 2\)'):        # a real difference still is
        load_model_weights(other, str(tmp_path / 'm'))


def test_fingerprint_names_the_part_that_differs(sim):
    "Catalogue, texts, split and language model: each part is checked only when both sides record it."
    import pandas as pd
    from interest_llm.checkpoint import run_fingerprint, check_fingerprint, FINGERPRINT_PARTS
    inter, items, sp = sim
    fp = run_fingerprint(sp, items)
    assert fp['llm'] is None and all(fp[k] for k in ('catalogue', 'texts', 'split'))
    fewer = sp.__class__(sp.item_ids, sp.users[:-1], sp.seqs[:-1], sp.times[:-1], None, sp.info)
    renamed = items.assign(text=items['text'] + '!')
    for now, part in ((run_fingerprint(fewer, items), 'split (users and events)'),
                      (run_fingerprint(sp, renamed), 'item texts'),
                      ({**fp, 'llm': 'b' * 64}, None)):
        if part is None: check_fingerprint(fp, now, 'x', 'y', 'z')                 # no llm recorded: not checked
        else:
            with pytest.raises(CheckpointError, match=re.escape(f'has another {part} than y')):
                check_fingerprint(fp, now, 'x', 'y', 'z')
    check_fingerprint({'catalogue': fp['catalogue']}, run_fingerprint(fewer, renamed), 'x', 'y', 'z')   # an older record
    assert list(FINGERPRINT_PARTS) == ['catalogue', 'texts', 'split', 'llm']
