"""Anomaly detection (chainrule.autograd.detect_anomaly): the first NaN/inf produced in forward or
backward raises, naming the op and the shapes; off, nothing changes."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import autograd, nn, optim
from chainrule.autograd import AnomalyError, detect_anomaly, set_detect_anomaly
from chainrule.train import Trainer

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def test_forward_nan_names_the_op_and_shapes():
    x = cr.tensor(np.array([[1.0, -1.0, 2.0]] * 4, np.float32), requires_grad=True)
    with detect_anomaly():
        h = x * 2.0                                     # finite: passes
        with pytest.raises(AnomalyError) as info:
            h.log()
    msg = str(info.value)
    assert msg.startswith("Log produced nan in forward")
    assert "(4, 3) float32" in msg and "its inputs were all finite" in msg
    assert "test_anomaly.py" in msg                     # where the user called it
    assert isinstance(info.value, FloatingPointError)
    assert not autograd.is_anomaly_enabled()            # restored on exit


def test_backward_inf_names_the_op_and_where_it_was_built():
    x = cr.tensor(np.zeros((2, 5)), dtype="float64", requires_grad=True)
    with detect_anomaly():
        y = x.sqrt()                                    # forward fine: sqrt(0) = 0
        with pytest.raises(AnomalyError) as info:
            y.sum().backward()
    msg = str(info.value)
    assert msg.startswith("Sqrt.backward returned inf in the gradient of input 0 (shape (2, 5))")
    assert "the upstream gradient was finite" in msg
    assert "the op was created at" in msg and "test_anomaly.py" in msg


def test_off_by_default_and_nan_passes_silently():
    assert not autograd.is_anomaly_enabled()
    x = cr.tensor([-1.0], requires_grad=True)
    y = x.log()                                         # no error when off
    assert np.isnan(y.data).all()
    y.sum().backward()


def test_set_detect_anomaly_decorator_and_nesting():
    prev = set_detect_anomaly(True)
    try:
        assert prev is False and autograd.is_anomaly_enabled()
        with detect_anomaly(False):
            cr.tensor([-1.0]).log()                     # switched off inside
        with pytest.raises(AnomalyError):
            cr.tensor([-1.0]).log()
    finally:
        set_detect_anomaly(False)

    @detect_anomaly()
    def f():
        return cr.tensor([0.0]).log()
    with pytest.raises(AnomalyError, match="Log produced inf"):
        f()
    assert not autograd.is_anomaly_enabled()


def test_in_a_training_step_the_first_bad_op_is_named():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    X = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    X[3, 2] = np.inf
    y = np.zeros(16, np.int64)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1))
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        trainer.fit((X, y), epochs=1, batch_size=16, progress=False)
    msg = str(info.value)                     # the first op to see the inf input is the one named
    assert " produced inf in forward" in msg and "(16, 4) float32" in msg
    assert "input(s) [0] already held nan/inf" in msg
