"""Shared test setup."""
import pytest

import rnnkit
from rnnkit import backend


@pytest.fixture(autouse=True)
def _rnnkit_defaults(request):
    """A test that changes the global default dtype must not leak it into other tests;
    the core tests also start from a fixed global seed."""
    floatx = backend.floatx()
    if request.node.path.name.startswith("test_core_"):
        rnnkit.set_seed(1234)
    yield
    backend.set_floatx(floatx)
