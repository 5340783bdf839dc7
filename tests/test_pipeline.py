"""The pipeline (`interest_llm.pipeline`): one set of defaults for every entry point, and `train_run` from Python doing
what `interest-llm train` does."""
import dataclasses, json, os
import pytest, torch
from interest_llm import cli, distributed
from interest_llm.data import leave_one_out
from interest_llm.simulate import simulate_drift
from interest_llm.model import ModelConfig, InterestModel
from interest_llm.train import TrainConfig, fit
from interest_llm.registry import MODELS
from interest_llm.pipeline import RunConfig, train_run, train_config_from, model_config_from, config_call

@pytest.fixture(scope='module')
def split():
    return leave_one_out(simulate_drift(n_users=30, n_items=40, n_topics=4, n_steps=(5, 9), seed=0)[0], n_negatives=0)

def test_every_entry_point_builds_the_same_configs(split):
    """`interest-llm train` with no tuning flag, `fit(model, split)` with default configs, `RunConfig()`, the registry's
    `ours` and the distributed entry point build one TrainConfig and one ModelConfig: the validated recipe."""
    text = torch.randn(split.n_items + 1, 8)
    # the command line: the options of `train` with no tuning flag, mapped onto a RunConfig
    from_cli = cli.run_config(cli.resolve(cli.build_parser().parse_args(['train'])))
    # Python: `fit(model, split)` trains with `TrainConfig()` (next test); the model with `ModelConfig`'s defaults
    no_options = distributed.make_parser().parse_args([])
    train_configs = {'cli': train_config_from(from_cli), 'RunConfig()': train_config_from(RunConfig()),
                     'fit': TrainConfig(), 'distributed': distributed.train_config(no_options)}
    model_configs = {'cli': model_config_from(from_cli, split, text),
                     'RunConfig()': model_config_from(RunConfig(), split, text),
                     'python': ModelConfig(n_items=split.n_items, text_dim=8),
                     'registry': MODELS['ours'].build(split, text, 0).cfg,
                     'distributed': distributed.model_config(no_options, split, text)}
    for name, cfg in train_configs.items(): assert cfg == TrainConfig(), (name, cfg)
    for name, cfg in model_configs.items(): assert cfg == model_configs['python'], (name, cfg)
    assert from_cli == RunConfig()

def test_fit_without_a_config_uses_the_recipe(split, monkeypatch):
    "`fit(model, split)` with no config trains with `TrainConfig()`, the config the other entry points build."
    used = []
    import interest_llm.train as T
    def spy(model, cfg):
        used.append(cfg)
        raise KeyboardInterrupt                          # the config is all this test needs
    monkeypatch.setattr(T, 'make_optimizer', spy)
    with pytest.raises(KeyboardInterrupt): fit(InterestModel(ModelConfig(n_items=split.n_items)), split)
    assert used == [TrainConfig()]

def test_train_run_is_what_the_cli_does(tmp_path):
    "The same options through `interest-llm train` and through `train_run(RunConfig)`: the same numbers and files."
    argv = ['train', '--dataset', 'simulated', '--quick', '--no-llm', '--baselines', 'pop', '--epochs', '1',
            '--no-progress', '--threads', '1']
    via_cli = cli.main(argv + ['--out', str(tmp_path / 'cli')])
    opts = dataclasses.replace(cli.run_config(cli.resolve(cli.build_parser().parse_args(argv))), out=str(tmp_path / 'py'))
    lines = []
    via_python = train_run(opts, log=lines.append)
    no_time = lambda value: ({k: v for k, v in value.items() if not k.endswith('_s')}     # seconds differ
                             if isinstance(value, dict) else value)
    for key in ('test', 'valid', 'model_config', 'model', 'dataset', 'data'):
        assert no_time(via_python[key]) == no_time(via_cli[key]), key
    assert no_time(via_python['baselines']['pop']['test']) == no_time(via_cli['baselines']['pop']['test'])
    strip = lambda cfg: {k: v for k, v in cfg.items() if k != 'checkpoint_dir'}
    assert strip(via_python['train_config']) == strip(via_cli['train_config'])
    assert via_python['command'] == config_call(opts) and via_cli['command'].startswith('interest-llm train')
    assert set(os.listdir(tmp_path / 'py')) == set(os.listdir(tmp_path / 'cli'))
    assert any(line.startswith('run folder: ') for line in lines)
    saved = json.loads((tmp_path / 'py' / 'config.json').read_text())['args']
    assert saved['max_len'] == opts.max_len and saved['no_llm'] is True
