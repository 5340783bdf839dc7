"""What a new user meets on their own file, run as a script with its output going to a log file (issue 15):
progress lines per stage and per epoch, `--device`, timestamps that are positions, run folders named after the file,
no text embedding for a model that does not use it, the shipped protocol text, and the sampler seed following --seed."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from interest_llm.cli import main, pick_device, CLIError
from interest_llm.benchmark import PROTOCOL, protocol_text

CLI = [sys.executable, '-c', 'from interest_llm.cli import main; main()']

@pytest.fixture(scope='module')
def tiny_llm(tmp_path_factory):
    from interest_llm.llm import make_tiny_model
    return str(make_tiny_model(tmp_path_factory.mktemp('llm') / 'tiny'))

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

def test_protocol_text_ships_with_the_package():
    from importlib.resources import files
    assert 'interest_llm/data_files/PROTOCOL.md' in PROTOCOL
    assert files('interest_llm').joinpath('data_files', 'PROTOCOL.md').is_file()
    txt = protocol_text()
    assert 'full ranking' in txt and 'leave-one-out' in txt.lower().replace('leave-one-out', 'leave-one-out')
    setup = (Path(__file__).resolve().parents[1] / 'setup.py').read_text()
    assert "'data_files/*'" in setup                               # packaged with the wheel, not only present in the checkout
