"""Fuzz: layers against PyTorch in float64, values and the gradients of inputs and parameters:
Linear, Conv1d/Conv2d (random stride, padding and padding modes, dilation, groups), max/avg pooling (1-D and 2-D,
padding, dilation, ceil_mode, count_include_pad), BatchNorm in train mode (running statistics
too), Embedding (repeated ids, padding_idx), LSTM/GRU (layers, directions, batch_first, initial
states). Cases where PyTorch refuses the arguments (a kernel larger than the padded input, a
pooling pad over half the window, one value per channel in training) must raise in chainrule too.
Each case runs with the fast path on (the default) and, for the ops it replaces, off.
"""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch_compare import agree, fuzz_settings, load_torch_state

import chainrule as cr
import chainrule.fast
from chainrule import nn
from chainrule.nn import functional as F

TF = torch.nn.functional


def normal(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


seeds = st.integers(0, 2 ** 16)
fast_modes = pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])


def _with_fast(fast, fn):
    if fast:
        return fn()
    with chainrule.fast.disabled():
        return fn()


@fuzz_settings(30)
@given(lead=st.lists(st.integers(1, 3), max_size=2), n_in=st.integers(1, 5),
       n_out=st.integers(1, 5), bias=st.booleans(), seed=seeds)
def test_linear(lead, n_in, n_out, bias, seed):
    arrays = [normal((*lead, n_in), seed), normal((n_out, n_in), seed + 1)]
    if bias:
        arrays.append(normal((n_out,), seed + 2))
    agree(F.linear, TF.linear, arrays)


@st.composite
def conv_cases(draw, dims):
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    # ints, or a padding mode ('same' with a stride > 1: both must refuse)
    padding = draw(st.one_of(st.tuples(*[st.integers(0, 2)] * dims),
                             st.sampled_from(["same", "valid"])))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    size = tuple(draw(st.integers(1, 7)) for _ in range(dims))   # small ones: output too small
    n = draw(st.integers(1, 2))
    return dict(groups=groups, stride=stride, padding=padding, dilation=dilation), \
        (n, c_in, *size), (c_out, c_in // groups, *kernel), draw(st.booleans())


@fast_modes
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")   # (torch's own)
@fuzz_settings(50)
@given(data=st.data(), seed=seeds)
def test_conv(fast, dims, data, seed):
    opts, x_shape, w_shape, bias = data.draw(conv_cases(dims))
    arrays = [normal(x_shape, seed), normal(w_shape, seed + 1)]
    if bias:
        arrays.append(normal((w_shape[0],), seed + 2))
    cr_fn, torch_fn = (F.conv1d, TF.conv1d) if dims == 1 else (F.conv2d, TF.conv2d)
    _with_fast(fast, lambda: agree(lambda *a: cr_fn(*a, **opts), lambda *a: torch_fn(*a, **opts),
                                   arrays))


@st.composite
def pool_cases(draw, dims, kind):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = draw(st.none() | st.tuples(*[st.integers(1, 3)] * dims))
    # now and then a pad over half the window, which both must refuse
    padding = tuple(draw(st.integers(0, k // 2)) + (draw(st.integers(0, 9)) == 0) for k in kernel)
    opts = dict(kernel_size=kernel, stride=stride, padding=padding,
                ceil_mode=draw(st.booleans()))
    if kind == "max":
        opts["dilation"] = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    else:
        opts["count_include_pad"] = draw(st.booleans())
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)),
             *(draw(st.sampled_from([4, 5, 3, 6, 2, 1])) for _ in range(dims)))
    return opts, shape


POOLS = {
    ("max", 1): (F.max_pool1d, TF.max_pool1d), ("max", 2): (F.max_pool2d, TF.max_pool2d),
    ("avg", 1): (F.avg_pool1d, TF.avg_pool1d), ("avg", 2): (F.avg_pool2d, TF.avg_pool2d),
}


@fast_modes
@pytest.mark.parametrize("kind,dims", list(POOLS))
@fuzz_settings(40)
@given(data=st.data(), seed=seeds)
def test_pool(fast, kind, dims, data, seed):
    opts, shape = data.draw(pool_cases(dims, kind))
    cr_fn, torch_fn = POOLS[kind, dims]
    x = normal(shape, seed)                      # continuous values: no ties inside a window
    grads = True
    if kind == "max":
        # a window of padding only (dilation 2 over a pad of 1): -inf, and PyTorch 2.13 aborts the
        # process in its backward there; chainrule gives -inf and a zero gradient: values only
        try:
            with torch.no_grad():
                grads = not torch.isinf(torch_fn(torch.from_numpy(x), **opts)).any()
        except RuntimeError:
            pass
    _with_fast(fast, lambda: agree(lambda t: cr_fn(t, **opts), lambda t: torch_fn(t, **opts), [x],
                                   grads=grads))


@st.composite
def batchnorm_cases(draw):
    dims = draw(st.sampled_from([0, 1, 2]))      # (N, C), (N, C, L), (N, C, H, W)
    c = draw(st.integers(1, 3))
    shape = (draw(st.sampled_from([3, 2, 4, 1])), c,   # (N = 1 and no spatial axes: both raise)
             *(draw(st.integers(1, 3)) for _ in range(dims)))
    return shape, dict(momentum=draw(st.sampled_from([0.1, 0.5, None])),
                       affine=draw(st.booleans()), eps=draw(st.sampled_from([1e-5, 1e-3])))


@fuzz_settings(50)
@given(case=batchnorm_cases(), seed=seeds, steps=st.integers(1, 2))
def test_batchnorm_train_mode(case, seed, steps):
    """Batch statistics normalise; the running ones move (momentum None: cumulative average).
    One value per channel (N * spatial = 1) raises in both."""
    shape, opts = case
    c = shape[1]
    kind = "BatchNorm2d" if len(shape) == 4 else "BatchNorm1d"
    cm = getattr(nn, kind)(c, dtype=np.float64, **opts)
    tm = getattr(torch.nn, kind)(c, dtype=torch.float64, **opts)
    if opts["affine"]:                           # not the 1 / 0 start: a real scale and shift
        with torch.no_grad():
            tm.weight.copy_(torch.from_numpy(normal((c,), seed + 7)))
            tm.bias.copy_(torch.from_numpy(normal((c,), seed + 8)))
    load_torch_state(cm, tm)
    for k in range(steps):                       # a second step: the running stats compound
        agree(cm, tm, [normal(shape, seed + k)], modules=(cm, tm), grads=k == steps - 1,
              rtol=1e-8, atol=1e-10)


@fast_modes
@fuzz_settings(30)
@given(num=st.integers(1, 6), dim=st.integers(1, 4), ids_shape=st.sampled_from([(3,), (2, 3)]),
       pad=st.booleans(), data=st.data())
def test_embedding(fast, num, dim, ids_shape, pad, data):
    padding_idx = data.draw(st.integers(0, num - 1)) if pad else None
    ids = np.array(data.draw(st.lists(st.integers(0, num - 1), min_size=int(np.prod(ids_shape)),
                                      max_size=int(np.prod(ids_shape)))),
                   dtype=np.int64).reshape(ids_shape)          # repeats: gradients accumulate
    tm = torch.nn.Embedding(num, dim, padding_idx=padding_idx, dtype=torch.float64)
    cm = nn.Embedding(num, dim, padding_idx=padding_idx, dtype=np.float64)
    load_torch_state(cm, tm)
    _with_fast(fast, lambda: agree(cm, tm, [ids], modules=(cm, tm)))


@st.composite
def rnn_cases(draw):
    return dict(input_size=draw(st.integers(1, 3)), hidden_size=draw(st.integers(1, 3)),
                num_layers=draw(st.integers(1, 2)), bias=draw(st.booleans()),
                batch_first=draw(st.booleans()), bidirectional=draw(st.booleans())), \
        draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.booleans())


@fast_modes
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@fuzz_settings(25)
@given(case=rnn_cases(), seed=seeds)
def test_recurrent(fast, kind, case, seed):
    opts, t, n, with_state = case
    torch.manual_seed(seed)
    tm = getattr(torch.nn, kind)(dtype=torch.float64, **opts)
    cm = getattr(nn, kind)(dtype=np.float64, **opts)
    load_torch_state(cm, tm)
    x = normal((n, t, opts["input_size"]) if opts["batch_first"] else (t, n, opts["input_size"]),
               seed)
    arrays = [x]
    if with_state:
        state = (opts["num_layers"] * (2 if opts["bidirectional"] else 1), n, opts["hidden_size"])
        arrays += [normal(state, seed + 1)] + ([normal(state, seed + 2)] if kind == "LSTM" else [])
    if kind == "LSTM" and with_state:
        cr_fn, torch_fn = (lambda x, h, c: cm(x, (h, c))), (lambda x, h, c: tm(x, (h, c)))
    else:
        cr_fn, torch_fn = cm, tm
    _with_fast(fast, lambda: agree(cr_fn, torch_fn, arrays, modules=(cm, tm), rtol=1e-8,
                                   atol=1e-10))
