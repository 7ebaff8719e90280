"""Fuzz: losses against PyTorch in float64 with their options (reduction, label smoothing,
(N, C, d1, ...) inputs), values and gradients: cross_entropy, nll_loss (after log_softmax),
mse_loss, l1_loss, binary_cross_entropy_with_logits (gradient of the target too). Logits reach
+-1000 (the fused forms must stay finite) and batches may be empty (mean of nothing: nan)."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch_compare import agree, fuzz_settings

from chainrule.nn import functional as F

TF = torch.nn.functional
reductions = st.sampled_from(["mean", "sum", "none"])
logit = st.one_of(st.floats(-10, 10), st.sampled_from([0.0, 1000.0, -1000.0, 30.0, -30.0]))


@st.composite
def class_cases(draw, spatial):
    n = draw(st.sampled_from([3, 1, 2, 0]))
    c = draw(st.integers(1, 4))
    extra = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2)))) if spatial else ()
    x = draw(hnp.arrays(np.float64, (n, c, *extra), elements=logit))
    y = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n * int(np.prod(extra)),
                               max_size=n * int(np.prod(extra)))), dtype=np.int64)
    return x, y.reshape((n, *extra))


@fuzz_settings(60)
@given(case=class_cases(spatial=True), reduction=reductions,
       smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_cross_entropy(case, reduction, smoothing):
    x, y = case
    agree(lambda a, b: F.cross_entropy(a, b, reduction=reduction, label_smoothing=smoothing),
          lambda a, b: TF.cross_entropy(a, b, reduction=reduction, label_smoothing=smoothing),
          [x, y], rtol=1e-9, atol=1e-11)


@fuzz_settings(50)
@given(case=class_cases(spatial=False), reduction=reductions)
def test_nll_after_log_softmax(case, reduction):
    x, y = case
    agree(lambda a, b: F.nll_loss(a.log_softmax(axis=1), b, reduction=reduction),
          lambda a, b: TF.nll_loss(TF.log_softmax(a, dim=1), b, reduction=reduction),
          [x, y], rtol=1e-9, atol=1e-11)


PAIRWISE = {
    "mse": (F.mse_loss, TF.mse_loss, st.floats(-100, 100)),
    "l1": (F.l1_loss, TF.l1_loss, st.floats(-100, 100)),
    "bce_with_logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
                        st.floats(0, 1)),
}


@pytest.mark.parametrize("name", list(PAIRWISE))
@fuzz_settings(50)
@given(data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
       reduction=reductions)
def test_pairwise_losses(name, data, shape, reduction):
    """The target's gradient too (PyTorch gives one for all three)."""
    cr_fn, torch_fn, target = PAIRWISE[name]
    x = data.draw(hnp.arrays(np.float64, shape, elements=logit))
    y = data.draw(hnp.arrays(np.float64, shape, elements=target))
    if name == "l1":                             # |x - y| has a kink at x = y: keep away from it
        y = np.where(np.abs(x - y) < 1e-6, y + 1.0, y)
    agree(lambda a, b: cr_fn(a, b, reduction=reduction),
          lambda a, b: torch_fn(a, b, reduction=reduction), [x, y], rtol=1e-9, atol=1e-11)
