"""chainrule/ops/loss.py against PyTorch (every reduction), finite differences, and bad input."""
import warnings

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule.nn import functional as F
from helpers import Const, check_against_torch, randn

TF = torch.nn.functional
REDUCTIONS = ["mean", "sum", "none"]
SHAPES = [(4, 3), (1, 3), (5,), (2, 3, 2)]


def _reduce(t, reduction):
    return t.mean() if reduction == "mean" else t.sum() if reduction == "sum" else t


def labels(n, c, seed=0, shape=None):
    return Const(np.random.default_rng(seed).integers(0, c, n if shape is None else shape))


# -- regression losses --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_l1_loss(reduction, shape):
    # both the prediction and the target get gradients, as in torch
    check_against_torch(lambda x, y: F.l1_loss(x, y, reduction=reduction),
                        lambda x, y: TF.l1_loss(x, y, reduction=reduction), [shape, shape])
    check_against_torch(lambda x, y: F.l1_loss(x, y, reduction=reduction),
                        lambda x, y: TF.l1_loss(x, y, reduction=reduction),
                        [shape, Const(randn(shape, np.random.default_rng(3)))])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction, shape):
    check_against_torch(lambda x, y: F.mse_loss(x, y, reduction=reduction),
                        lambda x, y: TF.mse_loss(x, y, reduction=reduction), [shape, shape])
    check_against_torch(lambda x, y: F.l2_loss(x, y, reduction=reduction),
                        lambda x, y: TF.mse_loss(x, y, reduction=reduction), [shape, shape], fd=False)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_half_squared_error_is_half_mse(reduction, shape):
    check_against_torch(lambda x, y: F.l2_loss(x, y, reduction=reduction, half=True),
                        lambda x, y: 0.5 * TF.mse_loss(x, y, reduction=reduction), [shape, shape])


def test_half_squared_error_gradient_is_the_residual():
    x = cr.tensor(np.array([1.0, 4.0]), requires_grad=True)
    F.l2_loss(x, np.array([0.5, 1.0]), reduction="sum", half=True).backward()
    np.testing.assert_array_equal(x.grad.data, [0.5, 3.0])


@pytest.mark.parametrize("shape", [(6,), (1,), (3, 4)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hinge_loss(reduction, shape):
    y = Const(np.where(np.random.default_rng(7).random(shape) < 0.5, -1.0, 1.0))
    check_against_torch(lambda x, t: F.hinge_loss(x, t, reduction=reduction),
                        lambda x, t: _reduce(torch.clamp(1 - t * x, min=0), reduction), [shape, y])


def test_hinge_loss_labels_must_be_plus_minus_one():
    with pytest.raises(ValueError, match="-1 or \\+1"):
        F.hinge_loss(cr.zeros(3), np.array([1.0, 0.0, -1.0]))


@pytest.mark.parametrize("shape", [(4,), (2, 3)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(reduction, shape):
    y = np.random.default_rng(2).random(shape)
    check_against_torch(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
                        lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction=reduction),
                        [shape, y])
    check_against_torch(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
                        lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction=reduction),
                        [shape, Const((y > 0.5).astype(float))])


# -- classification losses -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n,c", [(5, 4), (1, 3), (3, 1), (6, 2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ls", [0.0, 0.1, 0.3])
def test_cross_entropy(n, c, reduction, ls):
    check_against_torch(
        lambda x, y: F.cross_entropy(x, y, reduction=reduction, label_smoothing=ls),
        lambda x, y: TF.cross_entropy(x, y, reduction=reduction, label_smoothing=ls),
        [(n, c), labels(n, c)])


@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 4, 2, 3), (3, 2, 1)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_cross_entropy_spatial(shape, reduction, ls):
    # (N, C, d1, ...) logits with (N, d1, ...) labels, as for per-pixel or per-step classification
    y = labels(None, shape[1], shape=(shape[0],) + shape[2:])
    check_against_torch(
        lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=ls),
        lambda x, t: TF.cross_entropy(x, t, reduction=reduction, label_smoothing=ls),
        [shape, y])


def test_cross_entropy_accepts_label_tensors_and_lists():
    x = cr.tensor(randn((3, 4)), requires_grad=True)
    ref = F.cross_entropy(x, np.array([0, 3, 1])).item()
    assert F.cross_entropy(x, cr.tensor([0, 3, 1])).item() == ref
    assert F.cross_entropy(x, [0, 3, 1]).item() == ref
    assert F.cross_entropy(x, np.array([0, 3, 1], dtype=np.int32)).item() == ref


def test_cross_entropy_stable_for_huge_logits():
    x = cr.tensor(np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]]), requires_grad=True)
    with warnings.catch_warnings(), np.errstate(all="raise", under="ignore"):
        warnings.simplefilter("error")
        loss = F.cross_entropy(x, np.array([1, 2]))
        loss.backward()
    tx = torch.tensor(x.data, requires_grad=True)
    tl = TF.cross_entropy(tx, torch.tensor([1, 2]))
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n,c", [(5, 4), (1, 3)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(n, c, reduction):
    check_against_torch(lambda x, y: F.nll_loss(x, y, reduction=reduction),
                        lambda x, y: TF.nll_loss(x, y, reduction=reduction), [(n, c), labels(n, c)])
    # the usual pairing: log_softmax then nll_loss equals cross-entropy
    check_against_torch(lambda x, y: F.nll_loss(F.log_softmax(x, 1), y, reduction=reduction),
                        lambda x, y: TF.cross_entropy(x, y, reduction=reduction),
                        [(n, c), labels(n, c, seed=1)])


@pytest.mark.parametrize("n,c", [(5, 4), (1, 3), (4, 2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_multiclass_hinge_is_torch_multi_margin_times_c(n, c, reduction, margin):
    check_against_torch(
        lambda x, y: F.multiclass_hinge_loss(x, y, margin=margin, reduction=reduction),
        lambda x, y: TF.multi_margin_loss(x, y, margin=margin, reduction=reduction) * c,
        [(n, c), labels(n, c)])


def test_multiclass_hinge_worked_example():
    # CS231n's example: scores (3.2, 5.1, -1.7), label 0: max(0, 5.1-3.2+1) + max(0, -1.7-3.2+1) = 2.9
    loss = F.multiclass_hinge_loss(cr.tensor(np.array([[3.2, 5.1, -1.7]])), np.array([0]))
    np.testing.assert_allclose(loss.item(), 2.9, rtol=1e-12)


def test_zero_one_loss_value_and_backward_raises():
    x = cr.tensor(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), requires_grad=True)
    loss = F.zero_one_loss(x, np.array([1, 1, 1]))
    np.testing.assert_allclose(loss.item(), 1 / 3)
    assert F.zero_one_loss(x, np.array([1, 1, 1]), reduction="sum").item() == 1
    np.testing.assert_array_equal(F.zero_one_loss(x, [1, 1, 1], reduction="none").data, [0, 1, 0])
    # (N,) scores and {-1, +1} labels: the sign is the prediction
    assert F.zero_one_loss(cr.tensor([0.5, -2.0, 1.0]), [1, 1, -1]).item() == pytest.approx(2 / 3)
    with pytest.raises(RuntimeError, match="zero_one_loss.*gradient"):
        loss.backward()


# -- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss, F.multiclass_hinge_loss])
@pytest.mark.parametrize("bad", [5, 7, -1])
def test_label_out_of_range_names_label_and_classes(fn, bad):
    x = cr.zeros(3, 5, requires_grad=True)
    with pytest.raises(IndexError) as e:
        fn(x, np.array([0, bad, 1]))
    msg = str(e.value)
    assert f"label {bad}" in msg and "5 classes" in msg


def test_cross_entropy_spatial_label_out_of_range():
    with pytest.raises(IndexError, match="label 3 .*3 classes"):
        F.cross_entropy(cr.zeros(2, 3, 4), np.full((2, 4), 3))


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss, F.multiclass_hinge_loss])
def test_label_errors(fn):
    x = cr.zeros(3, 4)
    with pytest.raises(TypeError, match="integer"):
        fn(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        fn(x, np.array([0, 1]))


def test_cross_entropy_spatial_target_shape_must_match():
    # 8 labels would fit (2, 3, 4) logits once flattened, but (4, 2) is not (N, d1) = (2, 4)
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(4, 2\)"):
        F.cross_entropy(cr.zeros(2, 3, 4), np.zeros((4, 2), dtype=np.int64))


def test_cross_entropy_needs_two_dims():
    with pytest.raises(ValueError, match="cross_entropy"):
        F.cross_entropy(cr.zeros(4), np.array([0]))


@pytest.mark.parametrize("fn", [F.l1_loss, F.mse_loss, F.binary_cross_entropy_with_logits,
                                F.hinge_loss])
def test_shape_mismatch_is_an_error(fn):
    with pytest.raises(ValueError, match=r"\(3,\).*\(3, 1\)"):
        fn(cr.zeros(3), np.ones((3, 1)))


@pytest.mark.parametrize("fn", [F.l1_loss, F.mse_loss, F.cross_entropy])
def test_bad_reduction(fn):
    with pytest.raises(ValueError, match="reduction"):
        fn(cr.zeros(2, 2), np.zeros(2, dtype=np.int64) if fn is F.cross_entropy else np.zeros((2, 2)),
           reduction="avg")


def test_float32_losses_stay_float32():
    x = cr.randn(4, 3, requires_grad=True)
    for loss in (F.cross_entropy(x, [0, 1, 2, 0]), F.mse_loss(x, np.zeros((4, 3), np.float32)),
                 F.multiclass_hinge_loss(x, [0, 1, 2, 0]), F.l1_loss(x, np.zeros((4, 3), np.float32))):
        x.grad = None
        assert loss.dtype == np.float32
        loss.backward()
        assert x.grad.dtype == np.float32
