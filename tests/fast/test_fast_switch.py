"""The one switch of the fast path (chainrule/fast/__init__.py) and where it plugs in."""
import os
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
import chainrule.fast as fast
from chainrule import nn
from chainrule.fast import conv as FC
from chainrule.fast import pool as FP
from chainrule.fast import recurrent as FR
from chainrule.nn import container
from chainrule.ops import conv as C
from chainrule.ops import pool as P
from chainrule.ops import recurrent as R


def test_set_enabled_returns_the_previous_setting():
    assert fast.is_enabled()
    assert fast.set_enabled(False) is True
    assert not fast.is_enabled()
    assert fast.set_enabled(True) is False
    assert fast.is_enabled()


def test_disabled_is_a_context_that_restores_even_on_errors():
    with fast.disabled():
        assert not fast.is_enabled()
        with fast.disabled():
            assert not fast.is_enabled()
        assert not fast.is_enabled()
    assert fast.is_enabled()
    with pytest.raises(RuntimeError):
        with fast.disabled():
            raise RuntimeError("boom")
    assert fast.is_enabled()


def test_use_picks_the_replacement_only_when_enabled_and_for_plain_arrays():
    x = np.zeros((1, 1, 4, 4))
    table = [(C.Conv, FC.FastConv), (P.MaxPool2d, FP.FastMaxPool2d),
             (container.run_layers, __import__("chainrule.fast.fusion", fromlist=["run"]).run),
             (R.RNNLayer, FR.FastRNNLayer), (R.LSTMLayer, FR.FastLSTMLayer),
             (R.GRULayer, FR.FastGRULayer)]
    for ref, rep in table:
        assert fast.use(ref, x) is rep
        assert fast.use(ref, cr.tensor(x)) is rep
        assert fast.use(ref) is rep
        with fast.disabled():
            assert fast.use(ref, x) is ref
        assert fast.use(ref, x.view(type("Sub", (np.ndarray,), {}))) is ref   # not plain numpy
    assert fast.use(C.ConvTranspose, x) is C.ConvTranspose                    # nothing registered


def test_replacements_run_in_layers_and_not_when_disabled(monkeypatch):
    seen = []
    for cls in (C.Conv, FC.FastConv):
        orig = cls.forward
        monkeypatch.setattr(cls, "forward",
                            lambda self, *a, _o=orig, _c=cls, **k: (seen.append(_c), _o(self, *a, **k))[1])
    conv = nn.Conv2d(1, 2, 3)
    conv(cr.randn(1, 1, 5, 5))
    assert seen[0] is FC.FastConv
    seen.clear()
    with fast.disabled():
        conv(cr.randn(1, 1, 5, 5))
    assert seen == [C.Conv]


def test_environment_variable_starts_disabled():
    env = {**os.environ, "CHAINRULE_FAST": "0"}
    code = ("import chainrule as cr, chainrule.fast as f; "
            "print(f.is_enabled(), cr.fast.tuning.malloc_tuned())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]       # and glibc's malloc left alone
    env["CHAINRULE_FAST"] = "1"
    out = subprocess.run([sys.executable, "-c", "import chainrule.fast as f; print(f.is_enabled())"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True"]


def test_set_num_threads_is_re_exported_from_the_fast_package():
    from chainrule.fast import tuning
    assert cr.set_num_threads is tuning.set_num_threads
    assert cr.get_num_threads is tuning.get_num_threads
    prev = cr.set_num_threads(1)
    if prev is not None:                                  # a controllable OpenBLAS is loaded
        assert cr.get_num_threads() == 1
        cr.set_num_threads(prev)
    with pytest.raises(ValueError, match="positive"):
        cr.set_num_threads(0)


def test_backend_keeps_only_namespace_dtype_and_rng():
    from chainrule import backend
    for name in ("set_num_threads", "get_num_threads", "tune_malloc", "blas_controls"):
        assert not hasattr(backend, name)
