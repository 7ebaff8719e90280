import numpy as np
import pytest

from chainrule.data import (ArrayDataset, Dataset, Subset, TensorDataset, collate, random_split,
                            train_val_split)


def test_tensor_dataset_int_and_batch_indexing():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    ds = TensorDataset(X, y)
    assert len(ds) == 10
    x3, y3 = ds[3]
    np.testing.assert_array_equal(x3, X[3])
    assert y3 == 3
    xb, yb = ds[np.array([4, 0, 9])]
    np.testing.assert_array_equal(xb, X[[4, 0, 9]])
    np.testing.assert_array_equal(yb, [4, 0, 9])
    xs, ys = ds[2:5]
    assert xs.shape == (3, 2) and list(ys) == [2, 3, 4]
    assert ds[-1][1] == 9


def test_tensor_dataset_accepts_lists_and_single_array():
    ds = TensorDataset([[1.0, 2.0], [3.0, 4.0]])
    assert len(ds) == 2
    (x,) = ds[1]
    np.testing.assert_array_equal(x, [3.0, 4.0])


def test_tensor_dataset_size_mismatch_names_sizes():
    with pytest.raises(ValueError, match=r"\[5, 4\]"):
        TensorDataset(np.zeros((5, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="at least one"):
        TensorDataset()
    with pytest.raises(ValueError, match="scalar"):
        TensorDataset(np.float32(1.0))


def test_tensor_dataset_index_errors():
    ds = TensorDataset(np.zeros((3, 2)))
    with pytest.raises(IndexError, match="index 3 out of range for 3"):
        ds[3]
    with pytest.raises(TypeError):
        ds["a"]
    with pytest.raises(TypeError, match="integers"):
        ds[np.array([0.5])]


def test_array_dataset_X_y():
    X, y = np.ones((4, 3)), np.array([0, 1, 0, 1])
    ds = ArrayDataset(X, y)
    assert ds.X is ds.arrays[0] and ds.y is ds.arrays[1]
    assert ArrayDataset(X).y is None
    assert len(ArrayDataset(X)[0]) == 1


def test_subset_maps_indices_and_batches():
    X = np.arange(10) * 10
    ds = TensorDataset(X)
    sub = Subset(ds, [7, 2, -1])
    assert len(sub) == 3
    assert sub[0] == (70,) and sub[2] == (90,)
    (xb,) = sub[np.array([2, 0])]
    np.testing.assert_array_equal(xb, [90, 70])
    nested = Subset(sub, [1])
    assert nested[0] == (20,)
    with pytest.raises(IndexError, match="10 out of range"):
        Subset(ds, [0, 10])
    with pytest.raises(ValueError, match="1-D integer"):
        Subset(ds, [[0, 1]])


class Squares(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return np.array([i, i * i], dtype=np.float32), i


def test_generic_dataset_batches_by_stacking():
    ds = Squares()
    xb, yb = ds.get_batch(np.array([1, 3]))
    np.testing.assert_array_equal(xb, [[1, 1], [3, 9]])
    np.testing.assert_array_equal(yb, [1, 3])
    (xs,) = Subset(ds, [4]).get_batch([0])[:1]
    np.testing.assert_array_equal(xs, [[4, 16]])


def test_base_dataset_is_abstract():
    with pytest.raises(TypeError):
        len(Dataset())


def test_collate_errors_name_the_index():
    with pytest.raises(ValueError, match=r"dataset index 7 has shape \(3,\)"):
        collate([(np.zeros(2), 0), (np.zeros(3), 1)], indices=[6, 7])
    with pytest.raises(ValueError, match="1 fields, expected 2"):
        collate([(1, 2), (1,)])
    assert collate([1, 2])[0].tolist() == [1, 2]


def test_random_split_counts_and_fractions():
    ds = TensorDataset(np.arange(10))
    a, b = random_split(ds, [7, 3], seed=0)
    assert (len(a), len(b)) == (7, 3)
    assert sorted(np.concatenate([a.indices, b.indices]).tolist()) == list(range(10))
    parts = random_split(ds, [0.5, 0.3, 0.2], seed=1)
    assert [len(p) for p in parts] == [5, 3, 2]
    parts = random_split(TensorDataset(np.arange(11)), [0.5, 0.5], seed=1)
    assert [len(p) for p in parts] == [6, 5]
    again = random_split(ds, [7, 3], seed=0)
    np.testing.assert_array_equal(again[0].indices, a.indices)
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(ds, [6, 3])
    with pytest.raises(ValueError, match="sum to"):
        random_split(ds, [0.5, 0.2])


def test_random_split_uses_global_rng_when_unseeded():
    from chainrule import backend
    ds = TensorDataset(np.arange(50))
    backend.manual_seed(3)
    a = random_split(ds, [25, 25], seed=None)[0].indices
    backend.manual_seed(3)
    b = random_split(ds, [25, 25], seed=None)[0].indices
    np.testing.assert_array_equal(a, b)


def test_train_val_split_order_sizes_and_alignment():
    X = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    X_tr, X_val, y_tr, y_val = train_val_split(X, y, val_fraction=0.2, seed=0)
    assert X_tr.shape == (40, 2) and X_val.shape == (10, 2)
    assert y_tr.shape == (40,) and y_val.shape == (10,)
    np.testing.assert_array_equal(X_tr[:, 0] // 2, y_tr)     # rows stay paired
    np.testing.assert_array_equal(X_val[:, 0] // 2, y_val)
    assert sorted(np.concatenate([y_tr, y_val]).tolist()) == list(range(50))
    # Rounded up like sklearn; an int is a count.
    assert len(train_val_split(y, val_fraction=0.25)[1]) == 13
    assert len(train_val_split(y, val_fraction=7)[1]) == 7
    # Same seed, same split; different seed, different split.
    np.testing.assert_array_equal(train_val_split(y, seed=4)[1], train_val_split(y, seed=4)[1])
    assert not np.array_equal(train_val_split(y, seed=4)[1], train_val_split(y, seed=5)[1])


def test_train_val_split_no_shuffle_takes_the_tail():
    tr, val = train_val_split(np.arange(10), val_fraction=0.3, shuffle=False)
    assert tr.tolist() == list(range(7)) and val.tolist() == [7, 8, 9]


def test_train_val_split_stratified_keeps_class_proportions():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    X = np.arange(100)
    X_tr, X_val, y_tr, y_val = train_val_split(X, y, val_fraction=0.2, seed=0, stratify=y)
    assert np.bincount(y_val).tolist() == [12, 6, 2]
    assert np.bincount(y_tr).tolist() == [48, 24, 8]
    np.testing.assert_array_equal(y[X_val], y_val)
    # Not sorted by class.
    assert not np.all(np.diff(y_val) >= 0)


def test_train_val_split_stratified_uneven_within_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, size=333)
    _, y_val = train_val_split(y, val_fraction=0.3, seed=2, stratify=y)
    assert len(y_val) == 100
    exact = np.bincount(y, minlength=7) * 100 / 333
    assert np.all(np.abs(np.bincount(y_val, minlength=7) - exact) < 1)


def test_train_val_split_errors():
    y = np.arange(10)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(y, val_fraction=1.5)
    with pytest.raises(ValueError, match="at least 1"):
        train_val_split(y, val_fraction=10)
    with pytest.raises(ValueError, match=r"sizes \[10, 9\]"):
        train_val_split(y, y[:9])
    with pytest.raises(ValueError, match="shape \\(10,\\)"):
        train_val_split(y, stratify=y[:5])
    with pytest.raises(ValueError, match="shuffle=True"):
        train_val_split(y, stratify=y, shuffle=False)
