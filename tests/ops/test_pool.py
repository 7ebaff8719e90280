"""chainrule/ops/pool.py (and the pooling layers) against PyTorch: forward and input gradient in
float64 over a grid of kernels, strides, paddings, ceil mode, non-square shapes and batch size 1,
then finite differences; PyTorch's routing of max pooling ties; float32 kept; clear errors."""
import itertools

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F
from helpers import check_against_torch

TF = torch.nn.functional


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: torch's thread pool only adds overhead, a lot of it on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

# kernel 1-3, stride 1-3, padding 0-1 where PyTorch allows it (padding <= kernel / 2)
GRID = [(k, s, p) for k, s, p in itertools.product((1, 2, 3), (1, 2, 3), (0, 1)) if 2 * p <= k]
SHAPE_2D = (2, 1, 7, 6)          # odd and even, non-square
SHAPE_1D = (2, 2, 9)


def _id(v):
    return "k{}s{}p{}".format(*v)


@pytest.mark.parametrize("k,s,p", GRID, ids=[_id(g) for g in GRID])
@pytest.mark.parametrize("ceil", [False, True], ids=["floor", "ceil"])
def test_max_pool2d_grid(k, s, p, ceil):
    check_against_torch(lambda x: F.max_pool2d(x, k, s, p, ceil_mode=ceil),
                        lambda x: TF.max_pool2d(x, k, s, p, ceil_mode=ceil), [SHAPE_2D], fd=not ceil)


@pytest.mark.parametrize("k,s,p", GRID, ids=[_id(g) for g in GRID])
@pytest.mark.parametrize("ceil", [False, True], ids=["floor", "ceil"])
@pytest.mark.parametrize("cip", [True, False], ids=["incl_pad", "excl_pad"])
def test_avg_pool2d_grid(k, s, p, ceil, cip):
    check_against_torch(
        lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip),
        lambda x: TF.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip), [SHAPE_2D],
        fd=cip and not ceil)


@pytest.mark.parametrize("k,s,p", GRID, ids=[_id(g) for g in GRID])
@pytest.mark.parametrize("ceil", [False, True], ids=["floor", "ceil"])
def test_max_pool1d_grid(k, s, p, ceil):
    check_against_torch(lambda x: F.max_pool1d(x, k, s, p, ceil_mode=ceil),
                        lambda x: TF.max_pool1d(x, k, s, p, ceil_mode=ceil), [SHAPE_1D], fd=ceil)


@pytest.mark.parametrize("k,s,p", GRID, ids=[_id(g) for g in GRID])
@pytest.mark.parametrize("cip", [True, False], ids=["incl_pad", "excl_pad"])
def test_avg_pool1d_grid(k, s, p, cip):
    check_against_torch(lambda x: F.avg_pool1d(x, k, s, p, ceil_mode=True, count_include_pad=cip),
                        lambda x: TF.avg_pool1d(x, k, s, p, ceil_mode=True, count_include_pad=cip),
                        [SHAPE_1D], fd=cip)


NON_SQUARE = [
    # kernel, stride, padding, input shape
    ((2, 3), (1, 2), (1, 0), (2, 3, 7, 8)),
    ((3, 1), (2, 1), (1, 0), (1, 2, 6, 5)),
    ((1, 3), (3, 2), (0, 1), (1, 1, 7, 7)),
    ((3, 2), (2, 3), (1, 1), (3, 2, 5, 9)),
    (2, 2, 0, (1, 1, 2, 2)),                      # a single window
    (2, None, 0, (1, 2, 12, 10)),                 # LeNet's pools: the fast 2x2 path
    (2, 2, 0, (2, 3, 5, 7)),                      # the fast path with a remainder row / column
    (3, 2, 1, (1, 2, 13, 13)),                    # AlexNet-style overlapping pooling
]


@pytest.mark.parametrize("k,s,p,shape", NON_SQUARE)
@pytest.mark.parametrize("ceil", [False, True], ids=["floor", "ceil"])
def test_pools_non_square_and_batch_one(k, s, p, shape, ceil):
    # finite differences once per setting (torch's gradients are checked every time)
    check_against_torch(lambda x: F.max_pool2d(x, k, s, p, ceil_mode=ceil),
                        lambda x: TF.max_pool2d(x, k, s, p, ceil_mode=ceil), [shape], fd=ceil)
    check_against_torch(lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil),
                        lambda x: TF.avg_pool2d(x, k, s, p, ceil_mode=ceil), [shape], fd=not ceil)
    check_against_torch(lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=False),
                        lambda x: TF.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=False),
                        [shape], fd=False)


def test_max_pool_dilation_and_avg_divisor_override():
    check_against_torch(lambda x: F.max_pool2d(x, (2, 3), (1, 2), (1, 1), dilation=(2, 1)),
                        lambda x: TF.max_pool2d(x, (2, 3), (1, 2), (1, 1), dilation=(2, 1)),
                        [(2, 2, 7, 8)])
    check_against_torch(lambda x: F.max_pool1d(x, 3, 2, 1, dilation=2, ceil_mode=True),
                        lambda x: TF.max_pool1d(x, 3, 2, 1, dilation=2, ceil_mode=True),
                        [(2, 2, 10)])
    check_against_torch(lambda x: F.avg_pool2d(x, 3, 2, 1, divisor_override=4),
                        lambda x: TF.avg_pool2d(x, 3, 2, 1, divisor_override=4), [(2, 2, 7, 6)])


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 1), ((2, 3), (2, 1), (1, 0))])
def test_max_pool_ties_route_to_the_first_maximum_like_torch(k, s, p):
    # small integers (and ReLU's zeros) tie often; PyTorch sends the gradient to the first
    # maximum of each window, row by row
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (2, 3, 8, 7)).astype(np.float64)
    x[0, 0] = 0.0
    check_against_torch(lambda t: F.max_pool2d(t, k, s, p), lambda t: TF.max_pool2d(t, k, s, p),
                        [x], fd=False)
    check_against_torch(lambda t: F.max_pool1d(t, 3, 1, 1), lambda t: TF.max_pool1d(t, 3, 1, 1),
                        [x[:, :, 0]], fd=False)


ADAPTIVE = [(1, (2, 3, 7, 9)), ((3, 4), (2, 3, 7, 9)), ((5, 3), (1, 2, 7, 9)), ((2, None), (2, 2, 7, 9)),
            (7, (1, 2, 7, 9)), ((4, 3), (2, 2, 8, 9)), ((6, 6), (1, 2, 13, 13)), ((3, 2), (1, 1, 2, 1))]


@pytest.mark.parametrize("out,shape", ADAPTIVE)
def test_adaptive_avg_pool2d(out, shape):
    check_against_torch(lambda x: F.adaptive_avg_pool2d(x, out),
                        lambda x: TF.adaptive_avg_pool2d(x, out), [shape])
    check_against_torch(lambda x: nn.AdaptiveAvgPool2d(out)(x),
                        lambda x: torch.nn.AdaptiveAvgPool2d(out)(x), [shape], fd=False)


def test_global_avg_pool2d():
    check_against_torch(F.global_avg_pool2d, lambda x: x.mean((2, 3)), [(2, 3, 5, 4)])
    check_against_torch(nn.GlobalAvgPool2d(), lambda x: x.mean((2, 3)), [(1, 4, 1, 3)], fd=False)


def test_pool_layers_match_torch_modules():
    pairs = [
        (nn.MaxPool2d(2), torch.nn.MaxPool2d(2), (2, 3, 8, 8)),
        (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
         torch.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (1, 2, 9, 8)),
        (nn.MaxPool1d(3, 2), torch.nn.MaxPool1d(3, 2), (2, 3, 11)),
        (nn.AvgPool2d((2, 3), padding=1, count_include_pad=False),
         torch.nn.AvgPool2d((2, 3), padding=1, count_include_pad=False), (2, 2, 6, 7)),
        (nn.AvgPool1d(2), torch.nn.AvgPool1d(2), (2, 3, 9)),
    ]
    for mine, theirs, shape in pairs:
        check_against_torch(mine, theirs, [shape], fd=False)


def test_float32_stays_float32():
    x = cr.Tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 7)).astype(np.float32),
                  requires_grad=True)
    outs = [F.max_pool2d(x, 2), F.max_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 2),
            F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), F.adaptive_avg_pool2d(x, (3, 5)),
            F.global_avg_pool2d(x), F.max_pool1d(x[:, :, 0], 2), F.avg_pool1d(x[:, :, 0], 3, 1, 1)]
    total = None
    for o in outs:
        assert o.dtype == np.float32
        total = o.sum() if total is None else total + o.sum()
    total.backward()
    assert x.grad.dtype == np.float32


def test_lenet_shapes():
    x = cr.Tensor(np.zeros((64, 6, 28, 28), np.float32))
    assert nn.MaxPool2d(2)(x).shape == (64, 6, 14, 14)
    assert nn.MaxPool2d(2)(cr.Tensor(np.zeros((64, 16, 10, 10), np.float32))).shape == (64, 16, 5, 5)


def test_no_grad_and_input_without_grad():
    x = cr.Tensor(np.random.default_rng(0).standard_normal((1, 2, 6, 6)))
    y = F.max_pool2d(x, 2)
    assert not y.requires_grad
    with cr.no_grad():
        z = F.max_pool2d(cr.Tensor(x.data, requires_grad=True), 3, 1, 1)
    assert not z.requires_grad
    np.testing.assert_array_equal(z.data, TF.max_pool2d(torch.tensor(x.data), 3, 1, 1).numpy())


# -- errors ---------------------------------------------------------------------------------------------
def test_wrong_rank_names_the_layer():
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=2, stride=2\): expected input "
                                         r"\(N, C, H, W\), got \(64, 28, 28\)"):
        nn.MaxPool2d(2)(cr.Tensor(np.zeros((64, 28, 28))))
    with pytest.raises(ValueError, match=r"AvgPool1d\(kernel_size=3, stride=3\): expected input "
                                         r"\(N, C, L\), got \(4, 6, 5, 5\)"):
        nn.AvgPool1d(3)(cr.Tensor(np.zeros((4, 6, 5, 5))))
    with pytest.raises(ValueError, match=r"max_pool2d\(kernel_size=2, stride=2\): expected input"):
        F.max_pool2d(cr.Tensor(np.zeros((3, 4))), 2)
    with pytest.raises(ValueError, match=r"AdaptiveAvgPool2d\(output_size=3\): expected input"):
        nn.AdaptiveAvgPool2d(3)(cr.Tensor(np.zeros((3, 4, 4))))
    with pytest.raises(ValueError, match=r"GlobalAvgPool2d\(\): expected input \(N, C, H, W\)"):
        nn.GlobalAvgPool2d()(cr.Tensor(np.zeros((3, 4))))


def test_padding_larger_than_half_the_kernel_is_rejected_as_in_torch():
    for k, p in [(2, 2), (3, 2), (1, 1)]:
        with pytest.raises(RuntimeError):
            TF.max_pool2d(torch.zeros(1, 1, 8, 8), k, 1, p)
        with pytest.raises(ValueError, match=r"MaxPool2d.*padding should be at most half"):
            nn.MaxPool2d(k, 1, p)
        with pytest.raises(ValueError, match=r"avg_pool2d.*padding should be at most half"):
            F.avg_pool2d(cr.Tensor(np.zeros((1, 1, 8, 8))), k, 1, p)
    with pytest.raises(ValueError, match=r"MaxPool1d.*padding should be at most half"):
        nn.MaxPool1d(3, padding=2)
    nn.MaxPool2d(3, padding=1)          # at most half the kernel: allowed
    nn.MaxPool2d(2, padding=1)


def test_kernel_larger_than_input_and_bad_arguments():
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=5, stride=5\): input "
                                         r"\(1, 1, 4, 4\) is too small"):
        nn.MaxPool2d(5)(cr.Tensor(np.zeros((1, 1, 4, 4))))
    with pytest.raises(ValueError, match=r"kernel_size must be positive"):
        nn.MaxPool2d(0)
    with pytest.raises(ValueError, match=r"stride must be positive"):
        nn.AvgPool2d(2, stride=0)
    with pytest.raises(ValueError, match=r"kernel_size must be an int or a tuple of 2 ints"):
        nn.MaxPool2d((2, 2, 2))
    with pytest.raises(ValueError, match=r"output_size must be positive"):
        nn.AdaptiveAvgPool2d(0)
