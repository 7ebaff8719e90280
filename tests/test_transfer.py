"""Transfer learning and img2vec: feature extraction, similarity, k-means, freezing, head swaps,
per-group learning rates, the linear probe and the digits experiment (tiny)."""
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.models import lenet5
from chainrule.train import Trainer
from chainrule.applications.transfer import (FeatureExtractor, cluster_purity, cosine_similarity, extract_features, finetune_param_groups,
                                             freeze, freeze_all_but_last, head_name, kmeans,
                                             linear_probe, nearest_neighbours, parametrized_layers,
                                             replace_head, setup_transfer, suggest_regime,
                                             trainable_parameters, unfreeze)
from chainrule.applications.transfer_experiment import conv_stage, digits_transfer_experiment


def _net(dtype="float64"):
    cr.manual_seed(0)
    return lenet5(1, 10, 8).to(dtype)


# -- feature extraction -----------------------------------------------------------------------------

def test_features_equal_the_truncated_network_by_hand(rng):
    model = _net()
    X = rng.normal(size=(20, 1, 8, 8))
    with cr.no_grad():
        by_hand = {
            "8": model[:9](cr.tensor(X)).data,                       # ReLU after Linear(64, 120)
            "5": model[:6](cr.tensor(X)).data.reshape(20, -1),      # the second pool, flattened
            None: model[:-1](cr.tensor(X)).data,                    # the input of the last Linear
        }
    for layer, want in by_hand.items():
        got = extract_features(model, X, layer=layer)                # one batch: the same numbers
        assert got.shape == want.shape and isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, want)
        batched = extract_features(model, X, layer=layer, batch_size=7)   # batches of 7, 7, 6
        np.testing.assert_allclose(batched, want, rtol=1e-12, atol=1e-15)  # BLAS blocking only
    np.testing.assert_array_equal(extract_features(model, X, layer=-2), by_hand[None])
    with cr.no_grad():
        np.testing.assert_array_equal(extract_features(model, X, layer=""),   # '': the output
                                      model(cr.tensor(X)).data)
    assert extract_features(model, X).shape == (20, 84)


def test_extraction_runs_in_eval_mode_without_gradients_and_restores_the_mode(rng):
    cr.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Dropout(0.5), nn.Flatten(), nn.Linear(4 * 64, 3)).to("float64")
    X = rng.normal(size=(9, 1, 8, 8))
    model.train()
    Trainer(model, optim.SGD(model.parameters(), lr=0.01)).fit(
        (X, np.arange(9) % 3), epochs=1, batch_size=9, progress=False)   # running stats move
    model.zero_grad()
    feats = extract_features(model, X)                     # the input of the Linear: BN in eval
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    with cr.no_grad():
        want = model[:5](cr.tensor(X)).data
    np.testing.assert_array_equal(feats, want)
    assert all(p.grad is None for p in model.parameters())


def test_the_layers_after_the_chosen_one_do_not_run(rng):
    model = _net()
    calls = []
    model[11].register_forward_hook(lambda m, i, o: calls.append(1))
    extract_features(model, rng.normal(size=(4, 1, 8, 8)), layer="8")
    assert calls == []
    fx = FeatureExtractor(model, "3")
    out = fx(cr.tensor(rng.normal(size=(2, 1, 8, 8))))
    assert out.shape == (2, 16 * 4 * 4)


def test_feature_extractor_lets_gradients_flow_for_fine_tuning(rng):
    model = _net()
    fx = FeatureExtractor(model, None)
    fx(cr.tensor(rng.normal(size=(3, 1, 8, 8)))).sum().backward()
    assert model[0].weight.grad is not None and model[11].weight.grad is None


def test_feature_extraction_errors(rng):
    model = _net()
    with pytest.raises(KeyError, match="no layer 'nope'"):
        extract_features(model, rng.normal(size=(2, 1, 8, 8)), layer="nope")
    with pytest.raises(IndexError):
        FeatureExtractor(model, 40)
    with pytest.raises(ValueError, match="no Linear"):
        FeatureExtractor(nn.Sequential(nn.ReLU()))


def test_extract_features_accepts_datasets_and_loaders(rng):
    from chainrule.data import ArrayDataset, DataLoader
    model = _net()
    X = rng.normal(size=(10, 1, 8, 8))
    want = extract_features(model, X)
    ds = ArrayDataset(X, np.zeros(10, dtype=np.int64))
    np.testing.assert_allclose(extract_features(model, ds, batch_size=4), want, rtol=1e-12)
    np.testing.assert_allclose(extract_features(model, DataLoader(ds, batch_size=3)), want,
                               rtol=1e-12)


# -- similarity, neighbours, k-means ----------------------------------------------------------------

def test_cosine_similarity_by_hand():
    s = cosine_similarity([1.0, 0.0], [[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(s, [[1.0, 0.0, -1.0, 1 / np.sqrt(2), 0.0]], atol=1e-12)
    A = np.array([[3.0, 4.0], [4.0, 3.0]])
    np.testing.assert_allclose(cosine_similarity(A), [[1.0, 24 / 25], [24 / 25, 1.0]])
    with pytest.raises(ValueError, match="dimensions"):
        cosine_similarity(np.ones((2, 3)), np.ones((2, 4)))


def test_nearest_neighbours_ranks_and_excludes():
    db = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [-1.0, 0.0], [2.0, 0.0]])
    idx, sims = nearest_neighbours([1.0, 0.0], db, k=3)
    assert idx.tolist() == [[0, 4, 2]]                         # a tie (0 and 4) keeps db order
    np.testing.assert_allclose(sims[0, :2], [1.0, 1.0])
    idx, _ = nearest_neighbours(db[:2], db, k=2, exclude=np.array([0, 1]))
    assert idx.tolist() == [[4, 2], [2, 0]]
    idx, d = nearest_neighbours([1.0, 0.0], db, k=2, metric="euclidean")
    assert idx.tolist() == [[0, 2]] and d[0, 0] == 0.0
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbours(db[0], db, k=6)


def test_kmeans_finds_separated_blobs_and_is_seeded(rng):
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = np.repeat(np.arange(3), 30)
    X = centres[truth] + rng.normal(scale=0.5, size=(90, 2))
    res = kmeans(X, 3, n_init=2, seed=0)
    assert cluster_purity(res.labels, truth) == 1.0
    assert res.centroids.shape == (3, 2)
    d = ((X - res.centroids[res.labels]) ** 2).sum()
    assert res.inertia == pytest.approx(d)
    again = kmeans(X, 3, n_init=2, seed=0)
    np.testing.assert_array_equal(again.labels, res.labels)
    one_each = kmeans(X[:5], 5, seed=1)                        # k = n: every point its own cluster
    assert sorted(one_each.labels.tolist()) == [0, 1, 2, 3, 4] and one_each.inertia == 0.0
    with pytest.raises(ValueError, match="k must be"):
        kmeans(X, 0)


# -- freezing, heads, parameter groups --------------------------------------------------------------

def test_freezing_really_freezes(rng):
    model = _net()
    freeze(model, except_="11")
    frozen = {n: p.data.copy() for n, p in model.named_parameters() if not n.startswith("11.")}
    head = model[11].weight.data.copy()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["11.weight", "11.bias"]
    # an optimizer over every parameter, with momentum and weight decay: still no change
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    X, y = rng.normal(size=(16, 1, 8, 8)), rng.integers(0, 10, 16)
    Trainer(model, opt).fit((X, y), epochs=3, batch_size=4, progress=False)
    for n, p in model.named_parameters():
        if n in frozen:
            np.testing.assert_array_equal(p.data, frozen[n])
            assert p.grad is None                     # no gradient was ever computed for it
    assert not np.array_equal(model[11].weight.data, head)
    # one more backward by hand: only the head gets gradients
    loss = nn.functional.cross_entropy(model(cr.tensor(X)), y)
    loss.backward()
    assert all((p.grad is None) == (not n.startswith("11.")) for n, p in model.named_parameters())


def test_freeze_names_modules_params_and_objects():
    model = _net()
    freeze(model, except_=[model[9], "11.bias"])
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "9.weight", "9.bias", "11.bias"]
    assert len(trainable_parameters(model)) == 3
    unfreeze(model, only="0")
    assert model[0].weight.requires_grad and not model[3].weight.requires_grad
    unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(KeyError, match="no layer or parameter 'head'"):
        freeze(model, except_="head")
    assert parametrized_layers(model) == ["0", "3", "7", "9", "11"]
    assert freeze_all_but_last(model, 2) == ["9", "11"]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "9.weight", "9.bias", "11.weight", "11.bias"]


def test_replace_head_keeps_the_rest_of_the_weights(rng):
    model = _net()
    before = model.state_dict()
    assert replace_head(model, 5) is model
    after = model.state_dict()
    assert head_name(model) == "11" and isinstance(model[11], nn.Linear)
    assert after["11.weight"].shape == (5, 84) and after["11.bias"].shape == (5,)
    assert after["11.weight"].dtype == np.float64
    for k, v in before.items():
        if not k.startswith("11."):
            np.testing.assert_array_equal(after[k], v)
    out = model(cr.tensor(rng.normal(size=(3, 1, 8, 8))))
    assert out.shape == (3, 5)
    with pytest.raises(TypeError, match="not a Linear"):
        replace_head(model, 3, layer="0")


def test_replace_head_in_a_nested_model():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
            self.classifier = nn.Sequential(nn.Linear(6, 3))

        def forward(self, x):
            return self.classifier(self.body(x))

    net = Net()
    w = net.body[0].weight.data.copy()
    replace_head(net, 7)
    assert head_name(net) == "classifier.0" and net(cr.randn(2, 4)).shape == (2, 7)
    np.testing.assert_array_equal(net.body[0].weight.data, w)


def test_per_group_learning_rates_scale_the_pretrained_update(rng):
    model = _net()
    model, opt = setup_transfer(model, 5, "all", lr=0.1, optimizer="sgd", pretrained_lr_scale=0.1)
    assert [g["name"] for g in opt.param_groups] == ["pretrained", "head"]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.1])
    before = {id(p): p.data.copy() for p in model.parameters()}
    X, y = rng.normal(size=(8, 1, 8, 8)), rng.integers(0, 5, 8)
    opt.zero_grad()
    nn.functional.cross_entropy(model(cr.tensor(X)), y).backward()
    grads = {id(p): p.grad.data.copy() for p in model.parameters()}
    opt.step()                                         # first SGD-momentum step: p -= lr * grad
    for g in opt.param_groups:
        for p in g["params"]:
            np.testing.assert_allclose(p.data, before[id(p)] - g["lr"] * grads[id(p)], atol=1e-12)
    groups = finetune_param_groups(model, lr=1.0, pretrained_lr_scale=0.5)
    assert len(groups[1]["params"]) == 2 and groups[0]["lr"] == 0.5


def test_setup_transfer_regimes():
    m, opt = setup_transfer(_net(), 5, "linear", lr=0.01)
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["11.weight", "11.bias"]
    assert sum(len(g["params"]) for g in opt.param_groups) == 2
    m, opt = setup_transfer(_net(), 5, "last", lr=0.01, last_n=3)
    assert {n.split(".")[0] for n, p in m.named_parameters() if p.requires_grad} == {"7", "9", "11"}
    with pytest.raises(ValueError, match="regime"):
        setup_transfer(_net(), 5, "everything")
    assert suggest_regime(little_data=True, similar=True) == "linear"
    assert suggest_regime(little_data=False, similar=False) == "all"


def test_linear_probe_learns_on_frozen_features(rng):
    model = _net("float32")
    snapshot = {k: v.copy() for k, v in model.state_dict().items()}
    X = rng.normal(size=(60, 1, 8, 8)).astype(np.float32)
    feats = extract_features(model, X)
    y = (feats[:, 0] > np.median(feats[:, 0])).astype(np.int64)  # linearly separable in features
    probe = linear_probe(model, X, y, num_classes=2, epochs=60, lr=0.05, seed=0)
    from chainrule.train import predict
    assert (predict(probe, X).argmax(1) == y).mean() >= 0.95
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, snapshot[k])
    assert not any(p.requires_grad for p in probe.features.parameters())


# -- the worked experiment (tiny) -------------------------------------------------------------------

def test_digits_transfer_experiment_tiny(tmp_path):
    res, pre = digits_transfer_experiment(seeds=1, shots=3, pretrain_epochs=1, epochs=2, log=None,
                                          return_pretrained=True)
    assert set(res.acc) == {"scratch", "linear", "linear_conv", "finetune", "finetune_full",
                            "finetune_last"}
    assert all(0.0 <= res.mean(m) <= 1.0 and len(res.acc[m]) == 1 for m in res.acc)
    assert res.n_test == 179 and len(res.source_acc) == 1
    table = res.table()
    assert "(a) from scratch" in table and "(b) linear classifier" in table
    png = res.plot(str(tmp_path / "bars.png"))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert isinstance(pre, nn.Module) and res.to_dict()["shots"] == 3
    assert conv_stage(pre) == "6"


def test_examples_run_tiny(tmp_path, capsys):
    import importlib.util
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

    def load(name):
        spec = importlib.util.spec_from_file_location(f"ex_{name}", os.path.join(root, f"{name}.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    res = load("transfer_digits").main(seeds=1, shots=3, pretrain_epochs=1, epochs=1,
                                       out=str(tmp_path))
    assert os.path.exists(tmp_path / "transfer_digits.png") and "scratch" in res.acc
    purity = load("img2vec").main(epochs=1, out=str(tmp_path))
    assert 0.0 < purity <= 1.0
    assert "nearest" in capsys.readouterr().out
