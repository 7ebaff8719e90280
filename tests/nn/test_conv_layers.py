"""Convolution layers (chainrule/nn/conv.py): PyTorch-compatible parameters, reprs and results,
the output-size formula, clear errors, and LocallyConnected2d."""
import math

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn, optim
from chainrule.nn import functional as F

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def _pair_from_torch(tlayer, clayer, x, rtol=1e-10, atol=1e-12):
    """Copy a float64 torch layer's state into ``clayer``; compare outputs and all gradients."""
    clayer.load_state_dict({k: v.detach().numpy() for k, v in tlayer.state_dict().items()})
    assert [n for n, _ in clayer.named_parameters()] == [n for n, _ in tlayer.named_parameters()]
    xc = cr.Tensor(x.copy(), requires_grad=True)
    xt = torch.tensor(x.copy(), requires_grad=True)
    yc, yt = clayer(xc), tlayer(xt)
    np.testing.assert_allclose(yc.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    up = np.random.default_rng(1).standard_normal(yt.shape)
    yc.backward(up)
    yt.backward(torch.tensor(up))
    np.testing.assert_allclose(xc.grad.data, xt.grad.numpy(), rtol=rtol, atol=atol)
    for (name, p), (_, tp) in zip(clayer.named_parameters(), tlayer.named_parameters()):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    return yc


@pytest.mark.parametrize("args,kwargs,shape", [
    ((1, 6, 5), dict(padding=2), (4, 1, 28, 28)),                       # LeNet-5 conv1
    ((6, 16, 5), {}, (4, 6, 14, 14)),                                   # LeNet-5 conv2
    ((3, 8, (3, 2)), dict(stride=(2, 1), padding=1, dilation=2), (2, 3, 9, 8)),
    ((4, 6, 3), dict(padding="same", groups=2, bias=False), (1, 4, 7, 5)),
    ((4, 4, (2, 4)), dict(padding="same", groups=4), (2, 4, 6, 7)),    # asymmetric 'same'
    ((2, 3, 3), dict(stride=3, padding=(2, 0)), (2, 2, 10, 11)),
])
def test_conv2d_matches_torch_module(args, kwargs, shape, rng):
    t = torch.nn.Conv2d(*args, **kwargs).double()
    c = nn.Conv2d(*args, **kwargs, dtype="float64")
    y = _pair_from_torch(t, c, rng.standard_normal(shape))
    assert y.shape[2:] == c.output_size(shape[2:])
    assert repr(c) == repr(t)


@pytest.mark.parametrize("args,kwargs,shape", [
    ((3, 5, 4), dict(stride=2, padding=1), (2, 3, 17)),
    ((4, 4, 3), dict(padding="same", dilation=2, groups=2, bias=False), (1, 4, 9)),
    ((2, 3, 5), dict(padding="valid", dilation=1), (3, 2, 12)),
])
def test_conv1d_matches_torch_module(args, kwargs, shape, rng):
    t = torch.nn.Conv1d(*args, **kwargs).double()
    c = nn.Conv1d(*args, **kwargs, dtype="float64")
    y = _pair_from_torch(t, c, rng.standard_normal(shape))
    assert y.shape[2:] == c.output_size(shape[2])
    assert repr(c) == repr(t)


@pytest.mark.parametrize("args,kwargs,shape", [
    ((16, 6, 5), dict(stride=2), (2, 16, 5, 5)),
    ((4, 6, (3, 2)), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2), (2, 4, 4, 3)),
    ((3, 2, 3), dict(dilation=2, output_padding=1, bias=False), (1, 3, 4, 4)),
])
def test_conv_transpose2d_matches_torch_module(args, kwargs, shape, rng):
    t = torch.nn.ConvTranspose2d(*args, **kwargs).double()
    c = nn.ConvTranspose2d(*args, **kwargs, dtype="float64")
    assert c.weight.shape == t.weight.shape        # (in, out/groups, kh, kw)
    y = _pair_from_torch(t, c, rng.standard_normal(shape))
    assert y.shape[2:] == c.output_size(shape[2:])
    assert repr(c) == repr(t)


def test_conv_transpose2d_output_size_argument(rng):
    """Upsampling 7x7 by 2 can give 13x13 or 14x14: output_size picks, as in PyTorch."""
    t = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1).double()
    c = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, dtype="float64")
    c.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    x = rng.standard_normal((2, 3, 7, 7))
    for size in [(13, 13), (14, 13), (2, 2, 14, 14)]:
        yc = c(cr.Tensor(x), output_size=size)
        yt = t(torch.tensor(x), output_size=list(size))
        assert yc.shape == tuple(yt.shape)
        np.testing.assert_allclose(yc.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(3, 2.*output size \(15, 15\) is not reachable"):
        c(cr.Tensor(x), output_size=(15, 15))


def test_parameters_and_state_dict_like_torch():
    c, t = nn.Conv2d(6, 16, (5, 3), groups=2), torch.nn.Conv2d(6, 16, (5, 3), groups=2)
    assert c.weight.shape == (16, 3, 5, 3) and c.bias.shape == (16,)
    assert list(c.state_dict()) == list(t.state_dict()) == ["weight", "bias"]
    assert c.weight.dtype == np.float32
    assert nn.Conv1d(4, 8, 3, bias=False).bias is None
    assert sum(p.data.size for p in nn.Conv2d(1, 6, 5).parameters()) == 156        # LeNet-5's C1


@pytest.mark.parametrize("layer,fan_in", [(lambda: nn.Conv2d(6, 16, 5), 150),
                                          (lambda: nn.Conv2d(8, 16, (3, 2), groups=4), 12),
                                          (lambda: nn.Conv1d(3, 64, 7), 21),
                                          (lambda: nn.ConvTranspose2d(6, 8, 3, groups=2), 36)])
def test_default_init_is_pytorchs(layer, fan_in):
    """kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the same bound for the bias."""
    m = layer()
    bound = 1 / math.sqrt(fan_in)
    w = m.weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(m.bias.data).max() <= bound


def test_seeded_init_repeats():
    cr.manual_seed(3)
    a = nn.Conv2d(3, 4, 3).weight.data.copy()
    cr.manual_seed(3)
    assert np.array_equal(a, nn.Conv2d(3, 4, 3).weight.data)


def test_output_size_formula_on_layers():
    assert nn.Conv2d(1, 6, 5, padding=2).output_size((28, 28)) == (28, 28)
    assert nn.Conv2d(6, 16, 5).output_size(14) == (10, 10)
    assert nn.Conv2d(3, 96, 11, stride=4).output_size(227) == (55, 55)                 # AlexNet
    assert nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=2).output_size((9, 10)) == (4, 4)
    assert nn.Conv2d(3, 8, 4, padding="same").output_size((9, 10)) == (9, 10)
    assert nn.Conv2d(3, 8, 3, padding="full").output_size((9, 10)) == (11, 12)
    assert nn.Conv1d(3, 8, 3, padding="full", dilation=2).output_size(9) == (13,)
    assert nn.ConvTranspose2d(3, 8, 3, stride=2, padding=1, output_padding=1).output_size(7) == (14, 14)


# -- errors name the layer and the sizes ------------------------------------------------------------

def test_wrong_channel_count_message():
    conv = nn.Conv2d(1, 6, 5)
    with pytest.raises(ValueError) as e:
        conv(cr.zeros(64, 3, 28, 28))
    assert str(e.value) == ("Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1)): expected input "
                            "(N, 1, H, W), got (64, 3, 28, 28)")
    with pytest.raises(ValueError, match=r"Conv1d\(2, 4.*expected input \(N, 2, L\), got \(3, 2, 5, 5\)"):
        nn.Conv1d(2, 4, 3)(cr.zeros(3, 2, 5, 5))
    with pytest.raises(ValueError, match=r"expected input \(N, 1, H, W\), got \(28, 28\)"):
        conv(cr.zeros(28, 28))


def test_kernel_larger_than_input_message():
    conv = nn.Conv2d(3, 4, (5, 3), padding=1)
    with pytest.raises(ValueError) as e:
        conv(cr.zeros(2, 3, 2, 8))
    msg = str(e.value)
    assert msg.startswith("Conv2d(3, 4, kernel_size=(5, 3), stride=(1, 1), padding=(1, 1)): "
                          "kernel size (5, 3)")
    assert "larger than the padded input" in msg and "(2, 8)" in msg and "padded size 4" in msg
    conv(cr.zeros(2, 3, 3, 8))                       # padded to 5: fits exactly


def test_groups_and_mode_errors():
    with pytest.raises(ValueError, match="in_channels=3 must be divisible by groups=2"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels=5 must be divisible by groups=2"):
        nn.Conv2d(4, 5, 3, groups=2)
    with pytest.raises(ValueError, match="Conv2d: padding='same' is not supported for strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Conv1d: padding='same'"):
        nn.Conv1d(3, 4, 3, stride=3, padding="same")
    with pytest.raises(ValueError, match="padding_mode='reflect'"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="output_padding .* must be smaller"):
        nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="ConvTranspose2d: padding must be an int or a tuple"):
        nn.ConvTranspose2d(3, 4, 3, padding="same")


def test_dtype_mismatch_message():
    with pytest.raises(TypeError,
                       match=r"Conv2d\(1, 2.*input dtype float64 does not match the weights' float32"):
        nn.Conv2d(1, 2, 3)(cr.Tensor(np.zeros((1, 1, 5, 5))))


# -- LocallyConnected2d -----------------------------------------------------------------------------

def test_locally_connected_layer(rng):
    lc = nn.LocallyConnected2d(2, 3, input_size=(7, 6), kernel_size=(3, 2), stride=(2, 1), padding=1,
                               dtype="float64")
    assert lc.output_hw == (4, 7)
    assert lc.weight.shape == (4, 7, 3, 2, 3, 2) and lc.bias.shape == (3, 4, 7)
    assert lc.num_parameters() == 4 * 7 * (3 * 2 * 3 * 2 + 3)
    assert repr(lc) == ("LocallyConnected2d(2, 3, input_size=(7, 6), kernel_size=(3, 2), stride=(2, 1), "
                        "padding=(1, 1))")
    bound = 1 / math.sqrt(2 * 3 * 2)
    assert np.abs(lc.weight.data).max() <= bound and np.abs(lc.bias.data).max() <= bound

    x = rng.standard_normal((2, 2, 7, 6))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    w, b = lc.weight.data, lc.bias.data
    ref = np.empty((2, 3, 4, 7))
    for i in range(4):                       # position by position: each has its own filters
        for j in range(7):
            win = xp[:, :, 2 * i:2 * i + 3, j:j + 2]
            ref[:, :, i, j] = np.einsum("nckl,ockl->no", win, w[i, j]) + b[:, i, j]
    xc = cr.Tensor(x, requires_grad=True)
    np.testing.assert_allclose(lc(xc).data, ref, rtol=1e-12, atol=1e-12)
    assert cr.gradcheck(lambda t: lc(t), [xc])
    assert cr.gradcheck(lambda wt, bt: F.locally_connected2d(x, wt, bt, stride=(2, 1), padding=1),
                        [cr.Tensor(w.copy(), requires_grad=True), cr.Tensor(b.copy(), requires_grad=True)])

    lc(cr.Tensor(x)).sum().backward()
    assert lc.weight.grad.shape == lc.weight.shape and lc.bias.grad.shape == lc.bias.shape


def test_locally_connected_errors():
    lc = nn.LocallyConnected2d(1, 4, input_size=8, kernel_size=3, bias=False)
    assert lc.bias is None and lc.output_hw == (6, 6)
    with pytest.raises(ValueError, match=r"LocallyConnected2d\(1, 4, input_size=\(8, 8\).*expected input "
                                         r"\(N, 1, 8, 8\), got \(2, 1, 9, 8\)"):
        lc(cr.zeros(2, 1, 9, 8))
    with pytest.raises(ValueError,
                       match=r"LocallyConnected2d: kernel size \(5, 5\).*larger than the padded input"):
        nn.LocallyConnected2d(1, 4, input_size=4, kernel_size=5)


# -- in a network -----------------------------------------------------------------------------------

def test_small_convnet_learns(rng):
    """A few SGD steps of a conv net on a fixed batch lower the loss (layers, flatten, autograd)."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 3))
    x = cr.Tensor(rng.standard_normal((16, 1, 8, 8)).astype(np.float32))
    y = cr.tensor(rng.integers(0, 3, 16))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert model[0].weight.grad.dtype == np.float32
