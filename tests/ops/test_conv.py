"""Convolution ops (chainrule/ops/conv.py) against PyTorch: forward and every gradient in float64,
over a representative grid of settings, plus the locally connected op against plain loops."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import chainrule as cr
from chainrule.nn import functional as F

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
from chainrule.ops import conv as C
from chainrule.fast import conv as FC
from helpers import check_against_torch

@pytest.fixture(params=["batch_inner", "batch_outer"])
def layout(request, monkeypatch):
    """Run a test under both layouts of Conv: the reference (batch outermost, ops/conv.py) and the
    fast path's batch-innermost one (chainrule/fast/conv.py; picked by output size in normal use)."""
    if request.param == "batch_outer":
        monkeypatch.setattr(cr.fast, "_enabled", False)
    else:
        monkeypatch.setattr(cr.fast, "_enabled", True)
        monkeypatch.setattr(FC, "OUTER_MIN_POSITIONS", 10 ** 9)
    return request.param


# (N, C_in, C_out, spatial, kernel, stride, padding, dilation, groups, bias)
CONV2D_CASES = [
    (2, 3, 4, (7, 9), (3, 3), 1, 0, 1, 1, True),
    (2, 3, 4, (8, 7), (3, 2), 2, 1, 1, 1, True),                  # non-square kernel and input
    (1, 2, 3, (9, 8), (2, 3), 3, 2, 1, 1, True),                  # batch 1, stride 3, padding 2
    (2, 4, 6, (8, 8), (3, 3), 1, 1, 2, 2, True),                  # dilation 2, groups 2
    (2, 4, 4, (7, 6), (3, 3), (2, 1), (1, 2), (2, 1), 4, False),  # depthwise, pairs, no bias
    (2, 6, 3, (9, 7), (2, 2), 2, 2, 2, 3, True),                  # groups 3, stride 2, dilation 2
    (3, 2, 2, (5, 6), (5, 6), 1, 0, 1, 1, True),                  # kernel = input: 1x1 output
    (2, 3, 5, (6, 5), (1, 1), 2, 0, 1, 1, True),                  # 1x1 kernel, stride 2
    (2, 2, 3, (6, 6), (3, 3), 1, "valid", 1, 1, True),
    (2, 2, 3, (6, 7), (3, 3), 1, "same", 1, 1, True),
    (2, 2, 3, (6, 7), (4, 2), 1, "same", 1, 1, True),             # even kernels: asymmetric
    (1, 2, 4, (7, 6), (3, 2), 1, "same", (2, 3), 2, False),       # dilated 'same', odd total pad
    (2, 2, 3, (5, 6), (3, 2), 1, "full", (1, 2), 1, True),
    (1, 3, 2, (10, 11), (3, 3), 3, 1, 2, 1, True),
]


def _torch_padding(padding, kernel, dilation, n):
    """chainrule's 'full' is explicit padding d(k-1) for PyTorch."""
    if padding == "full":
        dilation = (dilation,) * n if isinstance(dilation, int) else dilation
        return tuple(d * (k - 1) for k, d in zip(kernel, dilation))
    return padding


@pytest.mark.parametrize("case", CONV2D_CASES, ids=lambda c: "-".join(map(str, c)))
def test_conv2d_against_torch(case, layout):
    n, cin, cout, hw, k, s, p, d, g, bias = case
    shapes = [(n, cin) + hw, (cout, cin // g) + k] + ([(cout,)] if bias else [])
    tp = _torch_padding(p, k, d, 2)
    check_against_torch(lambda *a: F.conv2d(*a, stride=s, padding=p, dilation=d, groups=g),
                        lambda *a: TF.conv2d(*a, stride=s, padding=tp, dilation=d, groups=g),
                        shapes, fd=case is CONV2D_CASES[1] or case is CONV2D_CASES[4])


CONV1D_CASES = [
    (2, 3, 4, 11, 3, 1, 0, 1, 1, True),
    (1, 2, 3, 12, 4, 2, 1, 1, 1, True),
    (2, 4, 6, 13, 3, 3, 2, 2, 2, False),
    (3, 3, 3, 9, 2, 1, "same", 3, 3, True),
    (2, 2, 2, 8, 4, 1, "same", 1, 1, True),
    (2, 2, 3, 7, 3, 1, "full", 2, 1, True),
    (2, 2, 3, 7, 7, 1, "valid", 1, 1, True),
]


@pytest.mark.parametrize("case", CONV1D_CASES, ids=lambda c: "-".join(map(str, c)))
def test_conv1d_against_torch(case, layout):
    n, cin, cout, length, k, s, p, d, g, bias = case
    shapes = [(n, cin, length), (cout, cin // g, k)] + ([(cout,)] if bias else [])
    tp = _torch_padding(p, (k,), d, 1)
    tp = tp[0] if isinstance(tp, tuple) else tp
    check_against_torch(lambda *a: F.conv1d(*a, stride=s, padding=p, dilation=d, groups=g),
                        lambda *a: TF.conv1d(*a, stride=s, padding=tp, dilation=d, groups=g),
                        shapes, fd=case is CONV1D_CASES[2])


# (N, C_in, C_out, spatial, kernel, stride, padding, output_padding, dilation, groups, bias)
CONVT_CASES = [
    (2, 3, 4, (4, 5), (3, 3), 1, 0, 0, 1, 1, True),
    (2, 3, 2, (4, 3), (3, 2), 2, 1, 1, 1, 1, True),
    (1, 2, 3, (3, 4), (2, 3), 3, 2, (2, 1), 1, 1, True),          # batch 1, stride 3, padding 2
    (2, 4, 6, (4, 4), (3, 3), 1, 1, 1, 2, 2, True),               # output_padding < dilation
    (2, 4, 4, (3, 5), (3, 2), (2, 1), (1, 0), (1, 0), (1, 2), 4, False),
    (2, 6, 3, (3, 3), (4, 4), 2, 2, 0, 1, 3, True),
    (1, 2, 2, (1, 1), (3, 3), 1, 0, 0, 1, 1, True),               # 1x1 input
]


@pytest.mark.parametrize("case", CONVT_CASES, ids=lambda c: "-".join(map(str, c)))
def test_conv_transpose2d_against_torch(case):
    n, cin, cout, hw, k, s, p, op, d, g, bias = case
    shapes = [(n, cin) + hw, (cin, cout // g) + k] + ([(cout,)] if bias else [])
    check_against_torch(
        lambda *a: F.conv_transpose2d(*a, stride=s, padding=p, output_padding=op, groups=g, dilation=d),
        lambda *a: TF.conv_transpose2d(*a, stride=s, padding=p, output_padding=op, groups=g, dilation=d),
        shapes, fd=case is CONVT_CASES[1] or case is CONVT_CASES[4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, rng, layout):
    x = cr.Tensor(rng.standard_normal((2, 3, 6, 6)).astype(dtype), requires_grad=True)
    w = cr.Tensor(rng.standard_normal((4, 3, 3, 3)).astype(dtype), requires_grad=True)
    b = cr.Tensor(rng.standard_normal(4).astype(dtype), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    y.sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype and w.grad.dtype == dtype and b.grad.dtype == dtype
    wt = cr.Tensor(rng.standard_normal((3, 2, 3, 3)).astype(dtype), requires_grad=True)
    yt = F.conv_transpose2d(x, wt, stride=2)
    yt.sum().backward()
    assert yt.dtype == dtype and wt.grad.dtype == dtype
    if dtype == np.float32:                   # float32 agrees with torch to float32 rounding
        ref = TF.conv2d(torch.tensor(x.data), torch.tensor(w.data), torch.tensor(b.data), padding=1)
        np.testing.assert_allclose(y.data, ref.numpy(), rtol=1e-4, atol=1e-4)


def test_gradients_skipped_when_not_needed(rng, layout):
    """The input batch needs no gradient (the first layer): none is computed or stored."""
    x = cr.Tensor(rng.standard_normal((2, 1, 8, 8)))
    w = cr.Tensor(rng.standard_normal((3, 1, 3, 3)), requires_grad=True)
    b = cr.Tensor(rng.standard_normal(3))
    y = F.conv2d(x, w, b)
    assert y.grad_fn.w is None                # no weight kept for an input gradient
    y.sum().backward()
    assert x.grad is None and b.grad is None and w.grad is not None
    x2 = cr.Tensor(rng.standard_normal((2, 1, 8, 8)), requires_grad=True)
    y2 = F.conv2d(x2, cr.Tensor(w.data))       # frozen weight: no windows kept for its gradient
    assert y2.grad_fn.cols is None
    y2.sum().backward()
    assert x2.grad is not None


@pytest.mark.parametrize("size,k,s,p,d", [(28, 5, 1, 2, 1), (14, 5, 1, 0, 1), (32, 3, 2, 1, 1),
                                          (10, 3, 3, 2, 2), (7, 7, 1, 0, 1), (9, 2, 2, 0, 3)])
def test_output_size_formula(size, k, s, p, d):
    expect = (size + 2 * p - d * (k - 1) - 1) // s + 1
    assert C.conv_output_size(size, k, s, p, d) == expect
    y = F.conv2d(np.zeros((1, 1, size, size + 1)), np.zeros((1, 1, k, k)), stride=s, padding=p, dilation=d)
    assert y.shape == (1, 1, expect, C.conv_output_size(size + 1, k, s, p, d))
    yt = F.conv_transpose2d(np.zeros((1, 1, expect, expect)), np.zeros((1, 1, k, k)), stride=s,
                            padding=p, dilation=d)
    expect_t = (expect - 1) * s - 2 * p + d * (k - 1) + 1
    assert yt.shape[2] == C.conv_transpose_output_size(expect, k, s, p, 0, d) == expect_t


def test_layout_choice_by_output_size(rng):
    """LeNet-5's first conv (28x28 outputs) runs batch-outermost, its second (10x10) batch-innermost;
    both agree with PyTorch in float64 at realistic sizes."""
    for xs, ws, pad, outer in [((3, 1, 28, 28), (6, 1, 5, 5), 2, True),
                               ((3, 6, 14, 14), (16, 6, 5, 5), 0, False)]:
        check_against_torch(lambda x, w, b: F.conv2d(x, w, b, padding=pad),
                            lambda x, w, b: TF.conv2d(x, w, b, padding=pad), [xs, ws, (ws[0],)], fd=False)
        fn = FC.FastConv()
        fn.needs_input_grad = (False, False, False)
        fn.forward(np.zeros(xs), np.zeros(ws), stride=(1, 1), padding=((pad, pad),) * 2, dilation=(1, 1))
        assert fn.inner == (not outer)


def test_named_padding_modes_sizes():
    x = np.zeros((1, 1, 9, 6))
    for k, d in [(3, 1), (4, 1), (2, 3), (3, 2)]:
        w = np.zeros((1, 1, k, k))
        assert F.conv2d(x, w, padding="same", dilation=d).shape == (1, 1, 9, 6)
        assert F.conv2d(x, w, padding="full", dilation=d).shape == (1, 1, 9 + d * (k - 1), 6 + d * (k - 1))
        assert F.conv2d(x, w, padding="valid", dilation=d).shape == (1, 1, 9 - d * (k - 1), 6 - d * (k - 1))
    assert C.resolve_padding("same", (4, 3), (1, 1), (1, 1)) == ((1, 2), (1, 1))


def test_explicit_asymmetric_padding_matches_torch_pad(rng, layout):
    x, w = rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((3, 2, 3, 2))
    y = F.conv2d(x, w, padding=((0, 2), (1, 0)))
    ref = TF.conv2d(TF.pad(torch.tensor(x), (1, 0, 0, 2)), torch.tensor(w))
    np.testing.assert_allclose(y.data, ref.numpy(), rtol=1e-12, atol=1e-12)


# -- errors -----------------------------------------------------------------------------------------

def test_kernel_larger_than_input_names_sizes():
    with pytest.raises(ValueError,
                       match=r"conv2d: kernel size \(5, 5\).*larger than the padded input.*\(3, 4\)"):
        F.conv2d(np.zeros((1, 1, 3, 4)), np.zeros((2, 1, 5, 5)))
    with pytest.raises(ValueError, match="dilated extent 5"):
        F.conv1d(np.zeros((1, 1, 4)), np.zeros((2, 1, 3)), dilation=2)
    F.conv2d(np.zeros((1, 1, 3, 4)), np.zeros((2, 1, 5, 5)), padding=1)     # padded 5x6: fits


def test_wrong_channels_and_groups():
    with pytest.raises(ValueError, match=r"conv2d: expected input \(N, 4, H, W\), got \(2, 3, 5, 5\)"):
        F.conv2d(np.zeros((2, 3, 5, 5)), np.zeros((2, 2, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="not divisible by groups=2"):
        F.conv2d(np.zeros((2, 4, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2)
    with pytest.raises(ValueError, match=r"conv1d: expected input \(N, 2, L\)"):
        F.conv1d(np.zeros((2, 2, 5, 5)), np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match="expected a weight"):
        F.conv2d(np.zeros((2, 2, 5, 5)), np.zeros((3, 2, 3)))


def test_same_with_stride_and_bad_padding():
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), stride=2, padding="same")
    with pytest.raises(ValueError, match="one of 'valid', 'same', 'full'"):
        F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding="half")
    with pytest.raises(ValueError, match="non-negative"):
        F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=-1)


def test_conv_transpose_output_padding_error():
    with pytest.raises(ValueError, match="output_padding .* must be smaller than either stride"):
        F.conv_transpose2d(np.zeros((1, 2, 3, 3)), np.zeros((2, 1, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: expected input \(N, 2, H, W\)"):
        F.conv_transpose2d(np.zeros((1, 3, 3, 3)), np.zeros((2, 1, 3, 3)))


# -- locally connected ------------------------------------------------------------------------------

def locally_connected_reference(x, w, b, stride, padding):
    """Position by position, the definition: y[n, o, i, j] = <w[i, j, o], window(i, j)> + b[o, i, j]."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow, o, c, kh, kw = w.shape
    y = np.zeros((x.shape[0], o, oh, ow))
    for n in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                win = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                for oc in range(o):
                    y[n, oc, i, j] = np.sum(w[i, j, oc] * win) + (0 if b is None else b[oc, i, j])
    return y


@pytest.mark.parametrize("n,c,o,hw,k,s,p,bias", [
    (2, 3, 4, (6, 7), (3, 2), (1, 1), (0, 0), True),
    (1, 2, 3, (7, 6), (3, 3), (2, 1), (1, 2), True),
    (3, 1, 2, (8, 8), (2, 2), (3, 2), (1, 0), False),
])
def test_locally_connected_against_loops_and_gradcheck(n, c, o, hw, k, s, p, bias, rng):
    oh, ow = (C.conv_output_size(hw[a], k[a], s[a], p[a]) for a in range(2))
    x = rng.standard_normal((n, c) + hw)
    w = rng.standard_normal((oh, ow, o, c) + k)
    b = rng.standard_normal((o, oh, ow)) if bias else None
    y = F.locally_connected2d(x, w, b, stride=s, padding=p)
    np.testing.assert_allclose(y.data, locally_connected_reference(x, w, b, s, p), rtol=1e-12, atol=1e-12)

    xs = [cr.Tensor(x, requires_grad=True), cr.Tensor(w, requires_grad=True)]
    if bias:
        xs.append(cr.Tensor(b, requires_grad=True))
    assert cr.gradcheck(lambda *a: F.locally_connected2d(*a, stride=s, padding=p), xs)


def test_locally_connected_with_shared_filters_is_a_convolution(rng):
    x, wc, bc = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    oh, ow = C.conv_output_size(7, 3, 2, 1), C.conv_output_size(6, 2, 2, 1)
    w = np.broadcast_to(wc, (oh, ow) + wc.shape).copy()
    b = np.broadcast_to(bc[:, None, None], (4, oh, ow)).copy()
    y = F.locally_connected2d(x, w, b, stride=2, padding=1)
    np.testing.assert_allclose(y.data, F.conv2d(x, wc, bc, stride=2, padding=1).data, rtol=1e-12, atol=1e-12)


def test_locally_connected_weight_mismatch():
    with pytest.raises(ValueError, match=r"gives \(4, 4\) output positions.*\(3, 3\)"):
        F.locally_connected2d(np.zeros((1, 1, 6, 6)), np.zeros((3, 3, 2, 1, 3, 3)))


@pytest.mark.parametrize("needs", [(False, False, True), (False, True, False), (True, False, True),
                                   (True, True, True)], ids=lambda n: "x%d-w%d-b%d" % n)
def test_conv_gradients_of_any_subset_of_inputs(needs, layout):
    """Only the gradients asked for are computed (the batch-outermost layout folds the bias into
    the weight product); each equals PyTorch's."""
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s) for s in ((2, 2, 6, 7), (3, 2, 3, 3), (3,))]
    ours = [cr.tensor(a, requires_grad=r) for a, r in zip(arrays, needs)]
    theirs = [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, needs)]
    g = rng.standard_normal((2, 3, 6, 7))
    (F.conv2d(*ours, padding=1) * cr.tensor(g)).sum().backward()
    (TF.conv2d(*theirs, padding=1) * torch.tensor(g)).sum().backward()
    for o, t, r in zip(ours, theirs, needs):
        if r:
            np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)
        else:
            assert o.grad is None
