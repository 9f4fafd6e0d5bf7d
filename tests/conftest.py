"""Shared test setup (the shared helpers are in tests/helpers.py)."""

import pytest

import rnnkit
from rnnkit import backend


@pytest.fixture(autouse=True)
def _rnnkit_defaults():
    """Every test starts from a fixed global seed, so that layers built without ``seed=``
    get the same weights in every run and a failure can be reproduced; a test that
    changes the global default dtype must not leak it into other tests."""
    floatx = backend.floatx()
    rnnkit.set_seed(1234)
    yield
    backend.set_floatx(floatx)


@pytest.fixture
def rnnkit_cache(tmp_path, monkeypatch):
    """RNNKIT_CACHE points at ``tmp_path / "cache"`` for the test (the application tests
    write models and parsed data there); returns that folder."""
    path = tmp_path / "cache"
    monkeypatch.setenv("RNNKIT_CACHE", str(path))
    return path
