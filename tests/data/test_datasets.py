import random
import sys

import numpy as np
import pytest

from chainrule.data import ArrayDataset, DataLoader
from chainrule.data.datasets import digits, digits_split, mnist1d


def test_digits_flat():
    pytest.importorskip("sklearn")
    X, y = digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert sorted(np.unique(y).tolist()) == list(range(10))


def test_digits_images():
    pytest.importorskip("sklearn")
    X, y = digits(images=True)
    assert X.shape == (1797, 1, 8, 8) and X.dtype == np.float32
    np.testing.assert_array_equal(X.reshape(1797, 64), digits()[0])


def test_digits_split_stratified():
    pytest.importorskip("sklearn")
    X_tr, y_tr, X_te, y_te = digits_split(test_fraction=0.2, seed=0)
    assert X_tr.shape == (1437, 64) and X_te.shape == (360, 64)
    assert y_tr.shape == (1437,) and y_te.shape == (360,)
    assert X_tr.dtype == np.float32 and y_te.dtype == np.int64
    # Each class's test share is its exact share within one example.
    y_all = np.concatenate([y_tr, y_te])
    exact = np.bincount(y_all) * 360 / 1797
    assert np.all(np.abs(np.bincount(y_te) - exact) < 1)
    X_tr2, _, _, _ = digits_split(seed=0)
    np.testing.assert_array_equal(X_tr, X_tr2)
    assert digits_split(images=True)[0].shape == (1437, 1, 8, 8)


def test_digits_missing_sklearn_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install chainrule\[datasets\]"):
        digits()


def test_digits_through_loader():
    pytest.importorskip("sklearn")
    X, y = digits()
    loader = DataLoader(ArrayDataset(X, y), batch_size=256, shuffle=True, seed=0)
    assert len(loader) == 8
    xb, yb = next(loader.iter_arrays())
    assert xb.shape == (256, 64) and xb.dtype == np.float32 and yb.dtype == np.int64


@pytest.fixture(scope="module")
def mnist1d_data():
    pytest.importorskip("mnist1d")
    np_state, py_state = np.random.get_state(), random.getstate()
    data = mnist1d()
    # Generating must not disturb the caller's global random streams.
    after_np = np.random.get_state()
    assert after_np[0] == np_state[0] and np.array_equal(after_np[1], np_state[1])
    assert random.getstate() == py_state
    return data


def test_mnist1d_shapes_and_dtypes(mnist1d_data):
    X_tr, y_tr, X_te, y_te = mnist1d_data
    assert X_tr.shape == (4000, 40) and X_te.shape == (1000, 40)
    assert y_tr.shape == (4000,) and y_te.shape == (1000,)
    assert X_tr.dtype == np.float32 and X_te.dtype == np.float32
    assert y_tr.dtype == np.int64 and y_te.dtype == np.int64
    assert set(np.unique(y_tr).tolist()) == set(range(10))
    assert np.isfinite(X_tr).all()
    # Standardised over the whole dataset.
    X_all = np.concatenate([X_tr, X_te])
    assert abs(X_all.mean()) < 1e-3 and abs(X_all.std() - 1) < 1e-3


def test_mnist1d_missing_package_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r"pip install chainrule\[datasets\]"):
        mnist1d()
