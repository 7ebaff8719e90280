import math

import numpy as np
import pytest
import torch

from chainrule.autograd import Tensor
from chainrule.nn import Parameter
from chainrule.optim.clip import clip_grad_norm_, clip_grad_value_

SHAPES = [(4, 3), (3,), (2, 2, 5), ()]


def make(seed=0, scale=1.0, shapes=SHAPES, dtype=np.float64):
    """The same parameters and gradients in chainrule and torch."""
    rng = np.random.default_rng(seed)
    grads = [np.asarray(scale * rng.standard_normal(s), dtype=dtype) for s in shapes]
    ours, theirs = [], []
    for g in grads:
        p = Parameter(np.zeros(g.shape, dtype))
        p.grad = Tensor(g.copy())
        ours.append(p)
        t = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype))
        t.grad = torch.from_numpy(g.copy())
        theirs.append(t)
    return ours, theirs


def check_same(ours, theirs, rtol=1e-12):
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=rtol, atol=1e-300)


@pytest.mark.parametrize("norm_type", [0.5, 1.0, 2.0, 3.0, 2.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.1, 1.0, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = make(seed=1, scale=2.0)
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    check_same(ours, theirs)


def test_returns_norm_before_clipping_and_clips_to_max_norm():
    ours, _ = make(seed=2, scale=3.0)
    flat = np.concatenate([p.grad.data.ravel() for p in ours])
    total = clip_grad_norm_(ours, 1.0)
    assert total == pytest.approx(np.linalg.norm(flat), rel=1e-12)
    after = np.linalg.norm(np.concatenate([p.grad.data.ravel() for p in ours]))
    assert after == pytest.approx(1.0, rel=1e-5)


def test_below_max_norm_leaves_grads_untouched():
    ours, _ = make(seed=3)
    before = [p.grad.data.copy() for p in ours]
    arrays = [p.grad.data for p in ours]
    clip_grad_norm_(ours, 1e9)
    for b, p, a in zip(before, ours, arrays):
        assert p.grad.data is a                     # in place
        np.testing.assert_array_equal(p.grad.data, b)


def test_scales_in_place():
    ours, _ = make(seed=4, scale=5.0)
    arrays = [p.grad.data for p in ours]
    clip_grad_norm_(ours, 0.5)
    assert all(p.grad.data is a for p, a in zip(ours, arrays))


def test_single_tensor_and_generator():
    ours, theirs = make(seed=5, shapes=[(6, 2)], scale=4.0)
    total = clip_grad_norm_(ours[0], 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs[0], 1.0)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    check_same(ours, theirs)
    ours, theirs = make(seed=6, scale=4.0)
    clip_grad_norm_((p for p in ours), 1.0)
    torch.nn.utils.clip_grad_norm_((t for t in theirs), 1.0)
    check_same(ours, theirs)


def test_params_without_grad_are_skipped():
    ours, theirs = make(seed=7, scale=3.0)
    ours[1].grad = None
    theirs[1].grad = None
    total = clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    assert ours[1].grad is None
    check_same([ours[0]] + ours[2:], [theirs[0]] + theirs[2:])


def test_no_grads_at_all_gives_zero():
    p = Parameter(np.ones(3))
    assert clip_grad_norm_([p], 1.0) == 0.0
    assert clip_grad_norm_([], 1.0) == 0.0
    clip_grad_value_([p], 1.0)
    assert p.grad is None


def test_float32_grads_stay_float32():
    ours, theirs = make(seed=8, scale=3.0, dtype=np.float32)
    total = clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total == pytest.approx(expected.item(), rel=1e-5)
    for p in ours:
        assert p.grad.data.dtype == np.float32
    check_same(ours, theirs, rtol=1e-5)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nonfinite_norm(bad):
    ours, theirs = make(seed=9)
    ours[0].grad.data[0, 0] = bad
    theirs[0].grad[0, 0] = bad
    with pytest.raises(RuntimeError, match="non|nan|inf"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    # without the flag it behaves like torch: the non-finite coefficient reaches the grads
    total = clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert (math.isnan(total) and math.isnan(expected.item())) or total == expected.item()
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(np.isnan(p.grad.data), torch.isnan(t.grad).numpy())


def test_nan_in_inf_norm_is_not_lost():
    ours, _ = make(seed=10)
    ours[-1].grad.data[...] = math.nan          # last in the list: a plain max() would drop it
    assert math.isnan(clip_grad_norm_(ours, 1.0, norm_type="inf"))


def test_bad_norm_type():
    ours, _ = make()
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_(ours, 1.0, norm_type=0)
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_(ours, 1.0, norm_type=-2)


@pytest.mark.parametrize("clip_value", [0.0, 0.3, 1.0, 10.0])
def test_clip_grad_value_matches_torch(clip_value):
    ours, theirs = make(seed=11, scale=2.0)
    arrays = [p.grad.data for p in ours]
    assert clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    check_same(ours, theirs)
    assert all(p.grad.data is a for p, a in zip(ours, arrays))


def test_clip_grad_value_single_tensor_skips_none_and_rejects_negative():
    ours, theirs = make(seed=12, scale=2.0)
    ours[0].grad = None
    clip_grad_value_(ours, 0.5)
    clip_grad_value_(ours[1], 0.5)
    assert ours[0].grad is None
    assert np.abs(ours[1].grad.data).max() <= 0.5
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(ours, -1.0)
