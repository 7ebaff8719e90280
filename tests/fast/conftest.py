"""Every test here exercises the fast path: turn it on (whatever CHAINRULE_FAST says) and restore
the setting afterwards."""
import pytest

import chainrule.fast


@pytest.fixture(autouse=True)
def fast_on():
    prev = chainrule.fast.set_enabled(True)
    yield
    chainrule.fast.set_enabled(prev)
