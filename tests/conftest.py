"""Shared test setup: seeded generators for every test, and ``tests/`` on the import path so that
test modules in sub-folders can ``from helpers import check_against_torch``."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same generator state, so failures reproduce run to run."""
    import chainrule

    chainrule.manual_seed(0)
    torch = sys.modules.get("torch")     # seed torch only where a test module imported it
    if torch is not None:
        torch.manual_seed(0)
    yield


@pytest.fixture
def rng():
    """A NumPy generator for building test inputs (seeded per test)."""
    return np.random.default_rng(1234)
