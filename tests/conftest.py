"""Shared test setup: seeded generators for every test, and ``tests/`` on the import path so that
test modules in sub-folders can ``from helpers import check_against_torch``."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# One BLAS thread for the suite: on shared CI runners, threads of a multi-threaded BLAS wait on
# each other behind other processes and turn millisecond tests into seconds. Results are the same.
import chainrule  # noqa: E402

chainrule.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same generator state, so failures reproduce run to run."""
    import chainrule

    chainrule.manual_seed(0)
    torch = sys.modules.get("torch")     # seed torch only where a test module imported it
    if torch is not None:
        torch.manual_seed(0)
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
    yield


@pytest.fixture
def rng():
    """A NumPy generator for building test inputs (seeded per test)."""
    return np.random.default_rng(1234)
