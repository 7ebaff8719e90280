"""RandomApply: a transform applied to each image with probability p, seeded and shape-keeping."""
import numpy as np
import pytest

from chainrule.data import ArrayDataset, DataLoader, RandomApply, RandomHorizontalFlip, RandomShift


def batch(n=400):
    return np.random.default_rng(0).random((n, 1, 4, 4)).astype(np.float32)


def test_each_image_is_transformed_with_probability_p():
    x = batch()
    y = RandomApply(RandomHorizontalFlip(p=1.0), p=0.3)(x, rng=np.random.default_rng(1))
    flipped = (y == x[..., ::-1]).all(axis=(1, 2, 3))
    kept = (y == x).all(axis=(1, 2, 3))
    assert (flipped | kept).all() and 0.2 < flipped.mean() < 0.4
    assert y is not x and (RandomApply(RandomShift(1), p=0.0)(x, np.random.default_rng(0)) == x).all()
    all_flipped = RandomApply(RandomHorizontalFlip(p=1.0), p=1.0)(x, np.random.default_rng(0))
    np.testing.assert_array_equal(all_flipped, x[..., ::-1])


def test_seeded_in_a_loader_and_new_each_epoch():
    x, y = batch(64), np.zeros(64, np.int64)
    make = lambda: DataLoader(ArrayDataset(x, y), batch_size=64, seed=3,
                              transform=RandomApply(RandomShift(1), p=0.5))
    a, b = make(), make()
    e1, e2 = next(a.iter_arrays())[0], next(a.iter_arrays())[0]
    np.testing.assert_array_equal(e1, next(b.iter_arrays())[0])         # same seed, same draws
    assert not np.array_equal(e1, e2)                                    # a new epoch, new draws


def test_errors():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        RandomApply(RandomShift(1), p=1.5)
    with pytest.raises(TypeError, match="transform must be callable"):
        RandomApply(3)
    with pytest.raises(ValueError, match="changed the shape"):
        RandomApply(lambda x: x[:, :, :2], p=1.0)(batch(4), np.random.default_rng(0))
    assert repr(RandomApply(RandomShift(1), 0.5)) == \
        "RandomApply(transform=RandomShift(max_shift=(1, 1), pad_mode='constant'), p=0.5)"
