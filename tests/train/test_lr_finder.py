"""The learning-rate range test: a usable suggestion, an exact restore, divergence handling."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import ArrayDataset, DataLoader
from chainrule.data.datasets import digits_split
from chainrule.train import LRFinderResult, Trainer, lr_find


@pytest.fixture(scope="module")
def digits():
    Xtr, ytr, Xte, yte = digits_split(test_fraction=0.2, seed=0)
    mean, std = Xtr.mean(0), Xtr.std(0) + 1e-2
    return ((Xtr - mean) / std).astype(np.float32), ytr, ((Xte - mean) / std).astype(np.float32), yte


def mlp():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10))


def test_suggested_lr_trains_well_and_the_model_is_left_exactly_as_it_was(digits):
    Xtr, ytr, Xte, yte = digits
    cr.manual_seed(0)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.123, momentum=0.9)
    model.eval()                                           # a mode the test must give back
    before = model.state_dict()
    opt_before = opt.state_dict()
    rng_before = cr.get_rng_state()

    res = lr_find(model, opt, (Xtr, ytr), start_lr=1e-5, end_lr=10, num_steps=100, seed=0)

    assert isinstance(res, LRFinderResult) and res.method == "steepest"
    assert res.diverged and len(res.losses) < 100         # blew up before 10, and stopped
    assert 1e-3 < res.suggestion < res.min_lr <= 10
    assert np.all(np.diff(res.lrs) > 0) and len(res.lrs) == len(res.losses)
    after = model.state_dict()
    for k in before:
        assert np.array_equal(before[k], after[k]), k
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert opt.param_groups[0]["lr"] == 0.123 and opt.state == {}
    assert opt.state_dict()["param_groups"] == opt_before["param_groups"]
    assert cr.get_rng_state() == rng_before

    # training from the same initial weights with the suggested rate converges
    model.train()
    opt = optim.SGD(model.parameters(), lr=res.suggestion, momentum=0.9)
    h = Trainer(model, opt).fit((Xtr, ytr), epochs=5, batch_size=32, seed=0, progress=False)
    assert h["loss"][-1] < 0.2 * h["loss"][0]
    assert Trainer(model, None).evaluate((Xte, yte))["accuracy"] > 0.9


def test_optimizer_state_and_loader_generators_are_restored(digits):
    Xtr, ytr, _, _ = digits
    model = mlp()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    Trainer(model, opt).fit((Xtr[:256], ytr[:256]), epochs=1, progress=False)   # Adam has state
    loader = DataLoader(ArrayDataset(Xtr, ytr), batch_size=32, shuffle=True, seed=3)
    state = opt.state_dict()
    gen = loader.generator.bit_generator.state
    weights = model.state_dict()
    res = lr_find(model, opt, loader, num_steps=30, end_lr=1.0)
    assert len(res.lrs) >= 10
    new = opt.state_dict()
    assert new["param_groups"] == state["param_groups"]
    for i, st in state["state"].items():
        for k, v in st.items():
            assert np.array_equal(v, new["state"][i][k]), (i, k)
    assert loader.generator.bit_generator.state == gen
    for k, v in model.state_dict().items():
        assert np.array_equal(v, weights[k])


def test_nan_from_the_start_and_bad_arguments():
    X = np.full((8, 4), np.nan, np.float32)
    y = np.zeros(8, np.int64)
    model = nn.Sequential(nn.Linear(4, 2))
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match="not finite from the first step"):
        lr_find(model, opt, (X, y), num_steps=5)
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        lr_find(model, opt, (X, y), start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match="num_steps"):
        lr_find(model, opt, (X, y), num_steps=1)


def test_plot_of_the_range_test(tmp_path, digits):
    Xtr, ytr, _, _ = digits
    model = mlp()
    res = lr_find(model, optim.SGD(model.parameters(), lr=0.1), (Xtr, ytr), num_steps=40)
    fig = res.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.axes[0].get_xscale() == "log"
    assert "suggested lr" in repr(res) or "suggestion" in repr(res)
