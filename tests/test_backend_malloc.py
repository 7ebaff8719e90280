"""chainrule raises glibc's malloc thresholds on import (chainrule.fast.tuning.tune_malloc), so that a
training step's freed buffers are reused instead of page-faulted back in every step."""
import os
import subprocess
import sys

import chainrule as cr


def _glibc_linux():
    try:
        return sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError, AttributeError):
        return False


GLIBC = _glibc_linux()            # elsewhere tuning must report itself off and change nothing

# a LeNet-5 training step on 28x28 inputs (benchmark W2's network), then the minor page faults of
# ten more steps
_STEP_FAULTS = """
import resource, numpy as np, chainrule as cr
from chainrule import optim
from chainrule.models import lenet5
from chainrule.nn import functional as F
cr.set_num_threads(1)
cr.manual_seed(0)
model = lenet5(1, 10, 28)
opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
rng = np.random.default_rng(0)
x = cr.tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32))
y = cr.tensor(rng.integers(0, 10, 64))
def step():
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
for _ in range(5):
    step()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(cr.fast.tuning.malloc_tuned(), (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 10)
"""


def _run(code, **env):
    e = {k: v for k, v in os.environ.items()
         if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                      "CHAINRULE_MALLOC_TUNING", "CHAINRULE_FAST")}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_import_tunes_malloc_and_a_conv_step_stops_page_faulting():
    tuned, faults = _run(_STEP_FAULTS)
    assert tuned == str(GLIBC)
    if GLIBC:      # measured: ~0 faults a step tuned, ~3500 with glibc's defaults
        assert float(faults) < 100, f"{faults} minor page faults per LeNet step with tuned malloc"


def test_opting_out_keeps_glibc_defaults():
    tuned, faults = _run(_STEP_FAULTS, CHAINRULE_MALLOC_TUNING="0")
    assert tuned == "False"
    tuned, _ = _run("import chainrule as cr; print(cr.fast.tuning.malloc_tuned(), 0)",
                    MALLOC_TRIM_THRESHOLD_="1000000")      # the user's own settings are left alone
    assert tuned == "False"


def test_tuning_state_is_reported():
    assert isinstance(cr.fast.tuning.malloc_tuned(), bool)
    assert cr.fast.tuning.tune_malloc() == cr.fast.tuning.malloc_tuned()
