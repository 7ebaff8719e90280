import numpy as np
import pytest

from chainrule.data import ArrayDataset, DataLoader, Dataset, Subset, TensorDataset


def make(n=10, d=3):
    X = np.arange(n * d, dtype=np.float32).reshape(n, d)
    y = np.arange(n, dtype=np.int32)
    return ArrayDataset(X, y)


def epoch_labels(loader):
    return [yb.tolist() for _, yb in loader.iter_arrays()]


def test_batches_in_order_with_partial_last():
    loader = DataLoader(make(10), batch_size=4)
    assert len(loader) == 3
    batches = list(loader.iter_arrays())
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert epoch_labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_dtypes_float_kept_int_to_int64():
    xb, yb = next(DataLoader(make(), batch_size=4).iter_arrays())
    assert xb.dtype == np.float32 and yb.dtype == np.int64
    X64 = np.zeros((4, 2))
    xb, = next(DataLoader(TensorDataset(X64), batch_size=2).iter_arrays())
    assert xb.dtype == np.float64


def test_drop_last():
    loader = DataLoader(make(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert epoch_labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(make(8), batch_size=4, drop_last=True)) == 2
    assert len(DataLoader(make(3), batch_size=4, drop_last=True)) == 0
    assert list(DataLoader(make(3), batch_size=4, drop_last=True).iter_arrays()) == []


def test_len_matches_number_of_batches():
    for n in [1, 5, 7, 16]:
        for bs in [1, 3, 4, 16, 20]:
            for drop in [False, True]:
                loader = DataLoader(make(n), batch_size=bs, shuffle=True, drop_last=drop, seed=0)
                assert len(loader) == len(list(loader.iter_arrays()))


def test_shuffle_covers_every_index_once_and_reshuffles_each_epoch():
    loader = DataLoader(make(50), batch_size=8, shuffle=True, seed=0)
    e1 = sum(epoch_labels(loader), [])
    e2 = sum(epoch_labels(loader), [])
    assert sorted(e1) == list(range(50)) and sorted(e2) == list(range(50))
    assert e1 != e2
    assert e1 != list(range(50))


def test_same_seed_same_batches():
    a = DataLoader(make(40), batch_size=8, shuffle=True, seed=123)
    b = DataLoader(make(40), batch_size=8, shuffle=True, seed=123)
    for _ in range(3):
        for (xa, ya), (xb, yb) in zip(a.iter_arrays(), b.iter_arrays()):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    c = DataLoader(make(40), batch_size=8, shuffle=True, seed=124)
    assert epoch_labels(c) != epoch_labels(DataLoader(make(40), batch_size=8, shuffle=True, seed=123))


def test_rows_stay_paired_under_shuffle():
    for xb, yb in DataLoader(make(30), batch_size=7, shuffle=True, seed=1).iter_arrays():
        np.testing.assert_array_equal(xb[:, 0] / 3, yb)


def test_generator_argument_and_global_rng():
    from chainrule import backend
    g = DataLoader(make(20), batch_size=5, shuffle=True, generator=np.random.default_rng(9))
    s = DataLoader(make(20), batch_size=5, shuffle=True, seed=9)
    assert epoch_labels(g) == epoch_labels(s)
    backend.manual_seed(5)
    a = DataLoader(make(20), batch_size=5, shuffle=True)
    backend.manual_seed(5)
    b = DataLoader(make(20), batch_size=5, shuffle=True)
    assert epoch_labels(a) == epoch_labels(b)
    with pytest.raises(ValueError, match="not both"):
        DataLoader(make(), seed=1, generator=np.random.default_rng(1))
    with pytest.raises(TypeError, match="Generator"):
        DataLoader(make(), generator=np.random.RandomState(1))


def test_bad_batch_size_and_dataset():
    with pytest.raises(ValueError, match="at least 1, got 0"):
        DataLoader(make(), batch_size=0)
    with pytest.raises(ValueError, match="got -2"):
        DataLoader(make(), batch_size=-2)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        DataLoader(make(), batch_size=2.5)
    with pytest.raises(TypeError, match="ArrayDataset"):
        DataLoader(np.zeros((4, 2)))
    with pytest.raises(TypeError, match="__len__"):
        DataLoader(42)


def test_fast_path_gathers_with_one_call_per_array():
    calls = []

    class Counting(ArrayDataset):
        def __getitem__(self, index):
            calls.append(index)
            return super().__getitem__(index)

    loader = DataLoader(Counting(*make(12).arrays), batch_size=4, shuffle=True, seed=0)
    assert len(list(loader.iter_arrays())) == 3
    assert calls == []          # no per-example __getitem__


def test_subset_of_array_dataset():
    sub = Subset(make(10), [9, 8, 7, 1, 0])
    labels = epoch_labels(DataLoader(sub, batch_size=2))
    assert labels == [[9, 8], [7, 1], [0]]


class PairDataset(Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.full((2, 2), i, dtype=np.float32), i


class BareSequence:
    """Not a Dataset subclass: just __len__ and __getitem__."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return [float(i), float(-i)]


def test_generic_datasets_are_collated():
    batches = list(DataLoader(PairDataset(), batch_size=3).iter_arrays())
    assert [b[0].shape for b in batches] == [(3, 2, 2), (3, 2, 2), (1, 2, 2)]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    np.testing.assert_array_equal(batches[1][1], [3, 4, 5])
    b = list(DataLoader(BareSequence(), batch_size=2, shuffle=True, seed=0).iter_arrays())
    assert len(b) == 3 and b[0][0].shape == (2,) and len(b[0]) == 2


def test_transform_applied_per_batch_to_features():
    seen = []

    def flip(x):
        seen.append(x.shape)
        return -x

    loader = DataLoader(make(6), batch_size=4, transform=flip)
    (x1, y1), (x2, y2) = loader.iter_arrays()
    np.testing.assert_array_equal(x1, -make(6).X[:4])
    np.testing.assert_array_equal(y1, [0, 1, 2, 3])
    assert seen == [(4, 3), (2, 3)]
    bad = DataLoader(make(6), batch_size=4, transform=lambda x: x[:1])
    with pytest.raises(ValueError, match="batch dimension"):
        list(bad.iter_arrays())
    with pytest.raises(TypeError, match="callable"):
        DataLoader(make(), transform=3)


def test_empty_dataset():
    loader = DataLoader(TensorDataset(np.zeros((0, 3))), batch_size=4, shuffle=True, seed=0)
    assert len(loader) == 0 and list(loader.iter_arrays()) == []


def test_iter_yields_tensors():
    autograd = pytest.importorskip("chainrule.autograd")
    loader = DataLoader(make(10), batch_size=4, shuffle=True, seed=0)
    batches = list(loader)
    assert len(batches) == 3
    xb, yb = batches[0]
    assert isinstance(xb, autograd.Tensor) and isinstance(yb, autograd.Tensor)
    assert xb.data.dtype == np.float32 and yb.data.dtype == np.int64
    assert xb.data.shape == (4, 3) and not xb.requires_grad
    ref = list(DataLoader(make(10), batch_size=4, shuffle=True, seed=0).iter_arrays())
    np.testing.assert_array_equal(xb.data, ref[0][0])
