"""chainrule/gradcheck.py: it passes correct compositions and catches a wrong backward."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import Function
from chainrule.nn import functional as F


def leaf(*shape, seed=0, positive=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    return cr.tensor(np.abs(a) + 0.5 if positive else a, requires_grad=True)


COMPOSITIONS = [
    ("mlp", lambda x, w, b: F.linear(x, w, b).tanh().sum(axis=1),
     lambda: (leaf(4, 3), leaf(5, 3, seed=1), leaf(5, seed=2))),
    ("softmax_log", lambda x, w: (x @ w).softmax(axis=1).log() * (x @ w),
     lambda: (leaf(3, 4), leaf(4, 2, seed=1))),
    ("cross_entropy", lambda x, w: F.cross_entropy(F.relu(x @ w) * 2 - x @ w, [0, 1, 1], label_smoothing=0.1),
     lambda: (leaf(3, 4), leaf(4, 2, seed=1))),
    ("index_cat_split", lambda x: cr.cat([x[np.array([0, 0, 2])], x[::-1] * x[1]], axis=0).split([2, 4])[1].exp(),
     lambda: (leaf(3, 2),)),
    ("pow_div_sqrt", lambda a, p: (a ** p / (a + 1)).sqrt() + a.log() * p,
     lambda: (leaf(2, 3, positive=True), leaf(3, seed=1))),
    ("reductions", lambda x: x.max(axis=0, keepdims=True) * x.mean(axis=1, keepdims=True) - x.min() * x.var(),
     lambda: (leaf(3, 4),)),
    ("shapes", lambda x, y: (x.transpose(1, 0).reshape(2, 6) @ y.permute(1, 0)).sigmoid().sum(axis=(0,)),
     lambda: (leaf(6, 2), leaf(5, 6, seed=1))),
    ("where_clip", lambda x, y: cr.where(x.data > 0, x * y, y.clip(-0.5, 0.5) ** 2) + cr.maximum(x, y),
     lambda: (leaf(4, 3), leaf(4, 3, seed=3))),
    ("losses", lambda x, y: F.mse_loss(x, y) + F.l1_loss(x.tanh(), y) + F.binary_cross_entropy_with_logits(x, y.sigmoid())
     + F.multiclass_hinge_loss(x, [0, 2, 1, 0]) + F.hinge_loss(x, np.sign(y.data)),
     lambda: (leaf(4, 3), leaf(4, 3, seed=5))),
    ("stack_batched_matmul", lambda a, b: cr.stack([a @ b, (a * 2) @ b], axis=1).log_softmax(axis=-1),
     lambda: (leaf(2, 3, 4), leaf(4, 5, seed=1))),
]


@pytest.mark.parametrize("name,f,make", COMPOSITIONS, ids=[c[0] for c in COMPOSITIONS])
def test_random_compositions_pass(name, f, make):
    inputs = make()
    before = [t.data.copy() for t in inputs]
    assert cr.gradcheck(f, inputs) is True
    for t, b in zip(inputs, before):
        np.testing.assert_array_equal(t.data, b)    # the perturbations are undone


def test_single_tensor_input_and_multiple_outputs():
    x = leaf(5, 2)
    assert cr.gradcheck(lambda t: (t * t).sum(axis=1), x)
    assert cr.gradcheck(lambda t: cr.split(t.exp(), [2, 3]), x)          # a tuple of outputs


def test_non_tensor_arguments_pass_through():
    x = leaf(3, 2)
    assert cr.gradcheck(lambda t, k: t * k + F.cross_entropy(t, np.array([0, 1, 1])), (x, 3.0))


def test_non_contiguous_and_read_only_inputs():
    base = np.random.default_rng(0).standard_normal((4, 3))
    x = cr.Tensor(base.T, requires_grad=True)                 # a transposed view: no flat view
    assert not x.data.flags.c_contiguous
    assert cr.gradcheck(lambda t: (t * t.exp()).sum(axis=0), x)
    assert x.data.base is base                                # the input's array is given back
    ro = np.random.default_rng(1).standard_normal((2, 3))
    ro.flags.writeable = False
    y = cr.Tensor(ro, requires_grad=True)
    assert cr.gradcheck(lambda t: t.tanh(), y)


class _BadSquare(Function):
    """A deliberately wrong backward: d(a^2)/da is 2a, not a."""

    def forward(self, a):
        self.a = a
        return a * a

    def backward(self, g):
        return g * self.a


class _BadSecondInput(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return g * self.b, g * self.a * 1.01        # 1% off for b only


def test_detects_a_wrong_backward():
    x = leaf(3, 2)
    with pytest.raises(cr.GradcheckError, match="input 0.*autograd.*finite differences"):
        cr.gradcheck(lambda t: _BadSquare.apply(t), x)
    assert cr.gradcheck(lambda t: _BadSquare.apply(t), x, raise_exception=False) is False
    assert issubclass(cr.GradcheckError, AssertionError)


def test_names_the_wrong_input():
    a, b = leaf(4), leaf(4, seed=1)
    with pytest.raises(cr.GradcheckError, match=r"input 1 \(shape \(4,\)\)"):
        cr.gradcheck(lambda x, y: _BadSecondInput.apply(x, y), (a, b))
    # only the inputs that require grad are checked
    b.requires_grad = False
    assert cr.gradcheck(lambda x, y: _BadSecondInput.apply(x, y), (a, b))


def test_refuses_what_it_cannot_check():
    with pytest.raises(TypeError, match="float64"):
        cr.gradcheck(lambda t: t * 2, cr.randn(3, requires_grad=True))
    with pytest.raises(ValueError, match="requires grad"):
        cr.gradcheck(lambda t: t * 2, cr.randn(3, dtype=np.float64))
    with pytest.raises(ValueError, match="no output depends"):
        cr.gradcheck(lambda t: cr.zeros(2, dtype=np.float64), leaf(2))
