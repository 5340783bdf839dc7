"""The benchmark module: the protocol text it names ships with the package; the matrix reads the model registry."""
from pathlib import Path
from interest_llm.benchmark import PROTOCOL, ABLATIONS, DETERMINISTIC, ID_SEQ_BASELINES, bench_argv, protocol_text
from interest_llm.registry import MODELS, model_names

def test_protocol_text_ships_with_the_package():
    from importlib.resources import files
    assert 'interest_llm/data_files/PROTOCOL.md' in PROTOCOL
    assert files('interest_llm').joinpath('data_files', 'PROTOCOL.md').is_file()
    txt = protocol_text()
    assert 'full ranking' in txt and 'leave-one-out' in txt.lower().replace('leave-one-out', 'leave-one-out')
    setup = (Path(__file__).resolve().parents[1] / 'setup.py').read_text()
    assert "'data_files/*'" in setup                               # packaged with the wheel, not only present in the checkout

def test_matrix_reads_the_registry():
    "Every ours-family entry of the registry is a row of the matrix; the deterministic and ID-only sets come from it."
    assert set(model_names('ours')) <= set(ABLATIONS) and set(DETERMINISTIC) == set(model_names('deterministic'))
    assert all(MODELS[m].uses_ids and not MODELS[m].needs_text for m in ID_SEQ_BASELINES)
    assert bench_argv('ml-100k', 'ours-no-vae', 0, 'r')[4:6] == ['ours', '--no-vae']
    assert bench_argv('ml-100k', 'ours-rnn', 0, 'r')[4:7] == ['ours', '--cell', 'rnn']
