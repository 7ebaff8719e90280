"""Batch transforms: statistics from the training set, crop/flip geometry, seeding through DataLoader."""
import numpy as np
import pytest

import chainrule
from chainrule.data import (ArrayDataset, Compose, DataLoader, MeanSubtraction, Normalize,
                            RandomCrop, RandomHorizontalFlip, RandomShift, Transform)


def images(n=8, c=3, h=6, w=5, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(size=(n, c, h, w)).astype(dtype)


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------- statistics


def test_mean_subtraction_per_channel_global_and_image():
    X = images(seed=1) + np.array([1.0, -2.0, 5.0], np.float32)[None, :, None, None]
    per = MeanSubtraction.fit(X, per_channel=True)
    assert per.mean.shape == (3,)
    np.testing.assert_allclose(per.mean, X.mean(axis=(0, 2, 3)), rtol=1e-5)
    out = per(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)

    glob = MeanSubtraction.fit(X, per_channel=False)
    assert glob.mean.shape == ()
    np.testing.assert_allclose(glob(X), X - X.mean(), atol=1e-5)

    pix = MeanSubtraction.fit(X, per_pixel=True)
    assert pix.mean.shape == (3, 6, 5)
    np.testing.assert_allclose(pix(X).mean(axis=0), 0, atol=1e-5)
    np.testing.assert_array_equal(X, images(seed=1) + np.array([1, -2, 5], np.float32)[None, :, None,
                                                                                        None])


def test_mean_subtraction_uses_training_statistics_through_the_loader():
    X_tr = images(n=20, seed=0) + 3.0
    X_te = images(n=6, seed=1) - 7.0
    sub = MeanSubtraction.fit(X_tr)
    # Test batches are centred with the *training* mean, not their own.
    batches = list(DataLoader(ArrayDataset(X_te, np.zeros(6, np.int64)), batch_size=4,
                              transform=sub).iter_arrays())
    got = np.concatenate([b[0] for b in batches])
    np.testing.assert_allclose(got, X_te - X_tr.mean(axis=(0, 2, 3))[None, :, None, None],
                               rtol=1e-5, atol=1e-5)
    assert got.mean() < -9.0                      # far from zero: not the test set's own mean


def test_normalize_fit_and_explicit():
    X = images(n=30, seed=2) * np.array([1, 4, 0.5], np.float32)[None, :, None, None] + 2
    norm = Normalize.fit(X)
    out = norm(X)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-5)
    explicit = Normalize([1.0, 2.0, 3.0], [2.0, 4.0, 0.5])
    x = images(n=2)
    want = (x - np.array([1, 2, 3], np.float32)[None, :, None, None]) / \
        np.array([2, 4, 0.5], np.float32)[None, :, None, None]
    np.testing.assert_allclose(explicit(x), want, rtol=1e-6)
    const = np.ones((4, 2, 3, 3), np.float32)
    np.testing.assert_array_equal(Normalize.fit(const)(const), 0)   # std 0 -> only centred
    x64 = images(n=2, dtype=np.float64)
    assert explicit(x64).dtype == np.float64
    assert MeanSubtraction(0.5)(np.zeros((2, 3), np.uint8)).dtype == np.float32


def test_statistics_errors():
    with pytest.raises(ValueError, match=r"Normalize: mean has 3 channels, the batch .* has 2"):
        Normalize([0, 0, 0], [1, 1, 1])(np.zeros((2, 2, 4, 4)))
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize(0.0, [1.0, 0.0])
    with pytest.raises(ValueError, match="MeanSubtraction: the mean has shape"):
        MeanSubtraction(np.zeros((3, 4, 4)))(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"expected a batch"):
        MeanSubtraction.fit(np.zeros(5))


# ---------------------------------------------------------------- geometry


def test_flip_geometry():
    x = images(n=50)
    out = RandomHorizontalFlip(p=0.5)(x, rng(0))
    flipped = np.array([np.array_equal(o, xi[..., ::-1]) for o, xi in zip(out, x)])
    kept = np.array([np.array_equal(o, xi) for o, xi in zip(out, x)])
    assert np.all(flipped ^ kept)                 # each image is either mirrored or untouched
    assert 10 < flipped.sum() < 40
    # The same draws decide which: mask = rng.random(N) < p.
    np.testing.assert_array_equal(flipped, rng(0).random(50) < 0.5)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x, rng(1)), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x, rng(1)), x)
    before = x.copy()
    RandomHorizontalFlip(p=1.0)(x, rng(1))
    np.testing.assert_array_equal(x, before)      # input untouched
    with pytest.raises(ValueError, match="p must be"):
        RandomHorizontalFlip(p=1.5)


def test_random_crop_matches_a_per_image_reference():
    x = images(n=7, h=6, w=5)
    crop = RandomCrop((4, 3), padding=(2, 1))
    out = crop(x, rng(3))
    assert out.shape == (7, 3, 4, 3) and out.dtype == np.float32
    # Reference: pad with zeros, then cut each window with the same draws in the same order.
    r = rng(3)
    top = r.integers(0, 6 + 4 - 4 + 1, size=7)
    left = r.integers(0, 5 + 2 - 3 + 1, size=7)
    padded = np.zeros((7, 3, 10, 7), np.float32)
    padded[:, :, 2:8, 1:6] = x
    for i in range(7):
        np.testing.assert_array_equal(out[i], padded[i, :, top[i]:top[i] + 4, left[i]:left[i] + 3])
    assert len({(t, l) for t, l in zip(top, left)}) > 1   # windows differ between images


def test_random_crop_without_padding_is_a_window_and_full_size_is_identity():
    x = images(n=5, h=6, w=6)
    out = RandomCrop(4)(x, rng(0))
    for i in range(5):
        found = [(t, l) for t in range(3) for l in range(3)
                 if np.array_equal(out[i], x[i, :, t:t + 4, l:l + 4])]
        assert found
    np.testing.assert_array_equal(RandomCrop(6)(x, rng(0)), x)
    with pytest.raises(ValueError, match=r"crop 7x7 is larger than the padded image 6x6"):
        RandomCrop(7)(x, rng(0))
    with pytest.raises(ValueError, match=r"expected a batch \(N, C, H, W\)"):
        RandomCrop(2)(np.zeros((4, 6)), rng(0))


def test_random_shift_keeps_size_and_fills_border():
    x = np.ones((40, 1, 5, 5), np.float32)
    out = RandomShift(2)(x, rng(0))
    assert out.shape == x.shape
    # Each image is all ones shifted by at most 2 pixels, so between 9 and 25 ones survive.
    ones = out.reshape(40, -1).sum(axis=1)
    assert ones.min() >= 9 and ones.max() <= 25 and len(np.unique(ones)) > 1
    edge = RandomShift(2, pad_mode="edge")(x, rng(0))
    np.testing.assert_array_equal(edge, x)        # edge padding of a constant image changes nothing
    reflect = RandomCrop(5, padding=1, pad_mode="reflect")(images(n=3, h=5, w=5), rng(0))
    assert reflect.shape == (3, 3, 5, 5)


def test_compose_order_and_plain_callables():
    x = images(n=4)
    seen = []

    def double(b):
        seen.append("double")
        return b * 2

    def noisy(b, rng):
        seen.append("noisy")
        return b + rng.normal(size=b.shape).astype(b.dtype)

    t = Compose([MeanSubtraction(1.0), double, noisy])
    got = t(x, rng(5))
    want = (x - 1.0) * 2 + rng(5).normal(size=x.shape).astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert seen == ["double", "noisy"]
    assert "MeanSubtraction" in repr(t)
    with pytest.raises(TypeError, match="item 1 is not callable"):
        Compose([double, 3])


def test_global_rng_without_a_generator():
    x = images(n=16)
    chainrule.manual_seed(7)
    a = RandomCrop(6, padding=2)(x)
    chainrule.manual_seed(7)
    b = RandomCrop(6, padding=2)(x)
    np.testing.assert_array_equal(a, b)
    assert issubclass(RandomCrop, Transform)


# ---------------------------------------------------------------- seeding through the loader


def aug_loader(seed, transform=None, **kw):
    X = images(n=20, c=1, h=6, w=6, seed=4)
    ds = ArrayDataset(X, np.arange(20))
    if transform is None:
        transform = Compose([MeanSubtraction.fit(X), RandomCrop(6, padding=2),
                             RandomHorizontalFlip()])
    return DataLoader(ds, batch_size=8, shuffle=True, seed=seed, transform=transform, **kw)


def epoch(loader):
    return [tuple(a.copy() for a in b) for b in loader.iter_arrays()]


def test_same_seed_same_batches_and_each_epoch_differs():
    a, b = aug_loader(0), aug_loader(0)
    a1, a2 = epoch(a), epoch(a)
    b1, b2 = epoch(b), epoch(b)
    for (xa, ya), (xb, yb) in zip(a1 + a2, b1 + b2):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    # Epoch 2 draws new crops/flips: the same example comes out differently.
    x1 = np.concatenate([x for x, _ in a1])[np.argsort(np.concatenate([y for _, y in a1]))]
    x2 = np.concatenate([x for x, _ in a2])[np.argsort(np.concatenate([y for _, y in a2]))]
    assert not np.array_equal(x1, x2)
    assert (np.abs(x1 - x2).reshape(20, -1).max(axis=1) > 0).sum() >= 10
    c1 = epoch(aug_loader(1))
    assert not all(np.array_equal(p[0], q[0]) for p, q in zip(a1, c1))


def test_augmentation_does_not_change_shuffling():
    identity = aug_loader(3, transform=lambda x: x)
    plain = epoch(identity) + epoch(identity)
    loader = aug_loader(3)
    augmented = epoch(loader) + epoch(loader)
    for (_, yp), (_, ya) in zip(plain, augmented):
        np.testing.assert_array_equal(yp, ya)
    no_transform = DataLoader(loader.dataset, batch_size=8, shuffle=True, seed=3)
    np.testing.assert_array_equal(epoch(no_transform)[0][1], plain[0][1])


def test_loader_follows_manual_seed_and_passes_rng_to_plain_functions():
    calls = []

    def jitter(x, rng):
        calls.append(type(rng).__name__)
        return x + rng.uniform(-0.1, 0.1, size=x.shape).astype(x.dtype)

    chainrule.manual_seed(11)
    first = epoch(aug_loader(None, transform=jitter))
    chainrule.manual_seed(11)
    second = epoch(aug_loader(None, transform=jitter))
    for p, q in zip(first, second):
        np.testing.assert_array_equal(p[0], q[0])
    assert set(calls) == {"Generator"}


def test_explicit_generator_is_repeatable():
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    e1 = epoch(aug_loader(None, generator=g1))
    e2 = epoch(aug_loader(None, generator=g2))
    for p, q in zip(e1, e2):
        np.testing.assert_array_equal(p[0], q[0])


def test_crop_and_flip_on_a_large_batch():
    # no timing here (timings belong in benchmarks/); the batch is large enough that a per-image
    # Python loop would show in the suite's runtime
    x = np.random.default_rng(0).random((256, 3, 32, 32), dtype=np.float32)
    t = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip()])
    a, b = t(x, rng(0)), t(x, rng(0))
    assert a.shape == x.shape and np.array_equal(a, b)
