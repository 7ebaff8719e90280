"""BatchNorm1d/2d, LocalResponseNorm and Dropout2d layers: PyTorch's running statistics after
several training steps, evaluation mode, state dicts, parameter gradients; channel dropout."""
import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from helpers import assert_close, check_against_torch, to_torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: torch's thread pool only adds overhead, a lot of it on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _pair(cls, tcls, C, **kw):
    mine, theirs = cls(C, dtype=np.float64, **kw), tcls(C, dtype=torch.float64, **kw)
    if mine.affine:
        rng = np.random.default_rng(7)
        w, b = rng.standard_normal(C), rng.standard_normal(C)
        mine.weight.data[...] = w
        mine.bias.data[...] = b
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w))
            theirs.bias.copy_(torch.tensor(b))
    return mine, theirs


CASES = [(nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 4)),
         (nn.BatchNorm1d, torch.nn.BatchNorm1d, (3, 4, 5)),
         (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 4, 3, 2)),
         (nn.BatchNorm2d, torch.nn.BatchNorm2d, (1, 4, 2, 3))]


@pytest.mark.parametrize("cls,tcls,shape", CASES)
@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
def test_running_statistics_after_training_steps_and_eval_match_torch(cls, tcls, shape, momentum):
    C = shape[1]
    mine, theirs = _pair(cls, tcls, C, momentum=momentum)
    rng = np.random.default_rng(0)
    for step in range(4):
        x = rng.standard_normal(shape) * (step + 1) + step
        xc, xt = cr.Tensor(x, requires_grad=True), to_torch(x)
        y, yt = mine(xc), theirs(xt)
        assert_close(y, yt, msg=f"training forward, step {step}")
        g = rng.standard_normal(shape)
        y.backward(g)
        yt.backward(torch.tensor(g))
        assert_close(xc.grad, xt.grad, msg="input gradient")
        assert_close(mine.weight.grad, theirs.weight.grad, msg="weight gradient")
        assert_close(mine.bias.grad, theirs.bias.grad, msg="bias gradient")
        mine.zero_grad()
        theirs.zero_grad()
    assert_close(mine.running_mean, theirs.running_mean, rtol=1e-12, atol=1e-14)
    assert_close(mine.running_var, theirs.running_var, rtol=1e-12, atol=1e-14)
    assert int(mine.num_batches_tracked.data) == int(theirs.num_batches_tracked) == 4
    mine.eval()
    theirs.eval()
    rm = mine.running_mean.data.copy()
    x = rng.standard_normal(shape)
    xc, xt = cr.Tensor(x, requires_grad=True), to_torch(x)
    y, yt = mine(xc), theirs(xt)
    assert_close(y, yt, msg="eval forward")
    g = rng.standard_normal(shape)
    y.backward(g)
    yt.backward(torch.tensor(g))
    assert_close(xc.grad, xt.grad, msg="eval input gradient")
    assert_close(mine.weight.grad, theirs.weight.grad, msg="eval weight gradient")
    assert_close(mine.bias.grad, theirs.bias.grad, msg="eval bias gradient")
    assert cr.gradcheck(mine, [cr.Tensor(x, requires_grad=True)])
    np.testing.assert_array_equal(mine.running_mean.data, rm)      # eval leaves them alone
    assert int(mine.num_batches_tracked.data) == 4


def test_state_dict_maps_to_torch_one_to_one():
    mine, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    theirs.train()
    theirs(torch.randn(4, 3, 2, 2))
    sd = mine.state_dict()
    assert list(sd) == list(theirs.state_dict())
    mine.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert_close(mine.running_mean, theirs.running_mean)
    assert int(mine.num_batches_tracked.data) == 1
    assert [n for n, _ in mine.named_parameters()] == ["weight", "bias"]
    assert mine.running_mean.dtype == np.float32 and mine.num_batches_tracked.dtype == np.int64


def test_without_running_statistics_and_without_affine():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3, 4))
    for kw in ({"track_running_stats": False}, {"affine": False},
               {"affine": False, "track_running_stats": False}):
        mine = nn.BatchNorm1d(3, dtype=np.float64, **kw)
        theirs = torch.nn.BatchNorm1d(3, dtype=torch.float64, **kw)
        for mode in ("train", "eval"):
            getattr(mine, mode)()
            getattr(theirs, mode)()
            check_against_torch(mine, theirs, [x], fd=False)
        assert (mine.running_mean is None) == (theirs.running_mean is None)
        assert len(list(mine.parameters())) == len(list(theirs.parameters()))


def test_batchnorm_in_a_network_trains_and_keeps_float32():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    x = cr.Tensor(np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32))
    out = model(x)
    assert out.dtype == np.float32
    out.sum().backward()
    bn = model[1]
    assert bn.weight.grad.dtype == np.float32 and bn.running_mean.dtype == np.float32
    model.eval()
    with cr.no_grad():
        assert model(x).dtype == np.float32


def test_batchnorm_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(16\): expected input \(N, 16, H, W\), "
                                         r"got \(64, 16, 10\)"):
        nn.BatchNorm2d(16)(cr.Tensor(np.zeros((64, 16, 10), np.float32)))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(8\): expected input \(N, 8\) or \(N, 8, L\), "
                                         r"got \(4, 7\)"):
        nn.BatchNorm1d(8)(cr.Tensor(np.zeros((4, 7), np.float32)))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(8\): expected more than 1 value per "
                                         r"channel when training, got input \(1, 8\)"):
        nn.BatchNorm1d(8)(cr.Tensor(np.zeros((1, 8), np.float32)))
    nn.BatchNorm1d(8).eval()(cr.Tensor(np.zeros((1, 8), np.float32)))      # fine in eval
    with pytest.raises(TypeError, match=r"BatchNorm1d\(8\): input dtype float64 does not match"):
        nn.BatchNorm1d(8)(cr.Tensor(np.zeros((4, 8))))
    with pytest.raises(ValueError, match=r"num_features must be a positive integer"):
        nn.BatchNorm2d(0)


def test_local_response_norm_layer():
    check_against_torch(nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0),
                        torch.nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0), [(2, 7, 3, 3)])
    check_against_torch(nn.LocalResponseNorm(2), torch.nn.LocalResponseNorm(2), [(1, 3, 4)], fd=False)
    with pytest.raises(ValueError, match=r"LocalResponseNorm\(5, .*\): expected input \(N, C, \*\)"):
        nn.LocalResponseNorm(5)(cr.Tensor(np.zeros((3, 4))))
    assert list(nn.LocalResponseNorm(5).parameters()) == []


# -- Dropout2d -----------------------------------------------------------------------------------------
def test_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    x = cr.Tensor(np.random.default_rng(0).uniform(1, 2, (32, 16, 5, 4)), requires_grad=True)
    layer = nn.Dropout2d(0.25)
    y = layer(x)
    zero = (y.data == 0).reshape(32, 16, -1)
    # every channel is either all zero or all kept, and the kept ones are scaled by 1/(1-p)
    assert np.all(zero.all(axis=2) | ~zero.any(axis=2))
    kept = ~zero[:, :, :1, None].reshape(32, 16, 1, 1)
    np.testing.assert_allclose(y.data, x.data * kept / 0.75, rtol=1e-15)
    dropped = 1 - kept.mean()
    assert 0.15 < dropped < 0.35
    g = np.random.default_rng(1).standard_normal(x.shape)
    y.backward(g)
    np.testing.assert_allclose(x.grad.data, g * kept / 0.75, rtol=1e-15)   # the same mask


def test_dropout2d_preserves_the_expectation():
    x = cr.Tensor(np.ones((4000, 8, 2, 2), np.float32))
    y = nn.Dropout2d(0.5)(x)
    assert y.dtype == np.float32
    assert abs(float(y.data.mean()) - 1.0) < 0.03
    y3 = nn.Dropout2d(0.3)(cr.Tensor(np.ones((4000, 8, 3))))    # (N, C, L): channel dropout too
    assert abs(float(y3.data.mean()) - 1.0) < 0.03
    assert np.all(y3.data.min(axis=2) == y3.data.max(axis=2))


def test_dropout2d_is_identity_in_eval_and_seeded():
    x = cr.Tensor(np.random.default_rng(0).standard_normal((3, 4, 2, 2)))
    layer = nn.Dropout2d(0.5).eval()
    assert layer(x) is x
    layer.train()
    cr.manual_seed(3)
    a = layer(x).data
    cr.manual_seed(3)
    b = layer(x).data
    np.testing.assert_array_equal(a, b)
    assert nn.Dropout2d(0.0)(x) is x
    assert not nn.Dropout2d(1.0)(x).data.any()


def test_dropout2d_errors():
    with pytest.raises(ValueError, match=r"probability must be in \[0, 1\]"):
        nn.Dropout2d(1.5)
    with pytest.raises(ValueError, match=r"Dropout2d\(p=0.5\): expected input \(N, C, H, W\) or "
                                         r"\(N, C, L\), got \(4, 5\)"):
        nn.Dropout2d()(cr.Tensor(np.zeros((4, 5))))
