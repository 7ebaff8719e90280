"""chainrule/ops/norm.py against PyTorch in float64: batch norm (training and evaluation, every
gradient, in-place running statistics), local response norm, and finite differences."""
import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule.nn import functional as F
from helpers import Const, check_against_torch

TF = torch.nn.functional


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: torch's thread pool only adds overhead, a lot of it on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
BN_SHAPES = [(5, 3), (4, 3, 6), (2, 3, 4, 5), (1, 2, 3, 3), (2, 1)]


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_batch_norm_training_forward_and_gradients(shape, affine):
    C = shape[1]
    params = [(C,), (C,)] if affine else []

    def mine(x, *wb):
        return F.batch_norm(x, None, None, *wb, training=True)

    def theirs(x, *wb):
        return TF.batch_norm(x, None, None, *wb, training=True)

    check_against_torch(mine, theirs, [shape] + params)


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_eval_forward_and_gradients(shape):
    C = shape[1]
    rng = np.random.default_rng(5)
    mean, var = rng.standard_normal(C), rng.random(C) + 0.5

    def mine(x, w, b):
        return F.batch_norm(x, mean, var, w, b, training=False, eps=1e-3)

    def theirs(x, w, b):
        return TF.batch_norm(x, torch.tensor(mean), torch.tensor(var), w, b, training=False, eps=1e-3)

    check_against_torch(mine, theirs, [shape, (C,), (C,)])


def test_batch_norm_only_some_inputs_need_gradients():
    # a frozen affine transform and an input that needs a gradient, and the other way round
    w, b = np.random.default_rng(0).standard_normal((2, 3))
    wc, bc, wt, bt = cr.Tensor(w), cr.Tensor(b), torch.tensor(w), torch.tensor(b)
    check_against_torch(lambda x: F.batch_norm(x, None, None, wc, bc, training=True),
                        lambda x: TF.batch_norm(x, None, None, wt, bt, training=True), [(4, 3, 2)])
    x = np.random.default_rng(1).standard_normal((4, 3, 2))
    check_against_torch(lambda xx, ww, bb: F.batch_norm(xx, None, None, ww, bb, training=True),
                        lambda xx, ww, bb: TF.batch_norm(xx, None, None, ww, bb, training=True),
                        [Const(x), (3,), (3,)])


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (3, 3, 4, 2)])
def test_batch_norm_updates_running_statistics_in_place_like_torch(shape):
    rng = np.random.default_rng(2)
    rm, rv = np.zeros(shape[1]), np.ones(shape[1])
    trm, trv = torch.zeros(shape[1], dtype=torch.float64), torch.ones(shape[1], dtype=torch.float64)
    for momentum in (0.1, 0.3, 0.1):
        x = rng.standard_normal(shape) * 3 + 1
        y = F.batch_norm(cr.Tensor(x), rm, rv, training=True, momentum=momentum)
        yt = TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=momentum)
        np.testing.assert_allclose(y.data, yt.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12, atol=1e-14)   # unbiased variance


def test_batch_norm_errors():
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel "
                                         r"when training, got input \(1, 3\)"):
        F.batch_norm(cr.Tensor(np.zeros((1, 3))), None, None, training=True)
    with pytest.raises(ValueError, match=r"batch_norm: weight has shape \(4,\), expected \(3,\)"):
        F.batch_norm(cr.Tensor(np.zeros((2, 3))), None, None, cr.Tensor(np.ones(4)), training=True)
    with pytest.raises(ValueError, match=r"evaluation mode needs running_mean and running_var"):
        F.batch_norm(cr.Tensor(np.zeros((2, 3))), None, None, training=False)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("shape", [(2, 6, 4), (2, 5, 3, 2), (1, 3, 2, 2, 2)])
def test_local_response_norm(size, shape):
    # large alpha so that the normalisation matters at these magnitudes
    check_against_torch(lambda x: F.local_response_norm(x, size, alpha=0.5, beta=0.75, k=1.5),
                        lambda x: TF.local_response_norm(x, size, alpha=0.5, beta=0.75, k=1.5),
                        [shape])


def test_local_response_norm_alexnet_settings_and_defaults():
    # AlexNet: size 5, alpha 1e-4, beta 0.75, k 2, on activations of a few units
    check_against_torch(lambda x: F.local_response_norm(x * 30, 5, 1e-4, 0.75, 2.0),
                        lambda x: TF.local_response_norm(x * 30, 5, 1e-4, 0.75, 2.0), [(2, 8, 3, 3)])
    check_against_torch(lambda x: F.local_response_norm(x, 3),
                        lambda x: TF.local_response_norm(x, 3), [(1, 4, 3, 3)])


def test_local_response_norm_errors_and_dtype():
    with pytest.raises(ValueError, match=r"local_response_norm\(size=5\): expected input \(N, C, \*\) "
                                         r"with at least 3 dimensions, got \(4, 6\)"):
        F.local_response_norm(cr.Tensor(np.zeros((4, 6))), 5)
    with pytest.raises(ValueError, match=r"size must be a positive integer"):
        F.local_response_norm(cr.Tensor(np.zeros((4, 6, 2))), 0)
    x = cr.Tensor(np.random.default_rng(0).standard_normal((2, 4, 3, 3)).astype(np.float32),
                  requires_grad=True)
    y = F.local_response_norm(x, 5)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_batch_norm_float32_stays_float32():
    x = cr.Tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32),
                  requires_grad=True)
    w = cr.Tensor(np.ones(3, np.float32), requires_grad=True)
    b = cr.Tensor(np.zeros(3, np.float32), requires_grad=True)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    for training in (True, False):
        y = F.batch_norm(x, rm, rv, w, b, training=training)
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    assert rm.dtype == rv.dtype == np.float32
