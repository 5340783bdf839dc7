"""Shared pytest fixtures: where the shared real data lives, and the small format fixtures."""
import os
from pathlib import Path
import pytest

HERE = Path(__file__).resolve().parent

@pytest.fixture(scope='session')
def data_dir():
    "The shared data directory: $INTEREST_LLM_DATA, else <repo>/../shared/data; skip when absent."
    d = Path(os.environ.get('INTEREST_LLM_DATA') or HERE.parent.parent / 'shared' / 'data').expanduser()
    if not d.is_dir(): pytest.skip(f'shared data directory {d} not found (set INTEREST_LLM_DATA)')
    return d

@pytest.fixture(scope='session')
def fixtures_dir():
    "tests/fixtures (tiny files in formats the shared data lacks)."
    return HERE / 'fixtures'
