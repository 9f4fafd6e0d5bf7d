"""Shared test setup: every test starts from rnnkit's defaults."""
import pytest

import rnnkit
from rnnkit import backend


@pytest.fixture(autouse=True)
def _rnnkit_defaults():
    """Tests that change the global dtype or seed must not leak it into other tests."""
    floatx = backend.floatx()
    rnnkit.set_seed(1234)
    yield
    backend.set_floatx(floatx)
