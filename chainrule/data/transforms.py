"""Batch transforms: preprocessing and live augmentation, applied by ``DataLoader`` to each batch.

A transform maps a batch of images x (N, C, H, W) (any (N, C, ...) for the non-geometric ones) to a
new array and never changes its input in place. The protocol is ``t(x, rng=None)``: random
transforms draw from ``rng``, a ``numpy.random.Generator``. ``DataLoader(..., transform=t, seed=s)``
passes its own augmentation generator (a child of its shuffling generator), so a seeded loader
gives the same batches run after run, while each epoch draws new crops and flips because the
generator moves on. Called without ``rng``, a random transform draws from chainrule's global RNG
(``chainrule.manual_seed``).

Statistics come from the training set only, then the same fitted transform serves validation and
test batches:

>>> mean = MeanSubtraction.fit(X_train)                  # one mean per channel
>>> train = DataLoader(ArrayDataset(X_train, y_train), batch_size=64, shuffle=True, seed=0,
...                    transform=Compose([mean, RandomCrop(32, padding=4), RandomHorizontalFlip()]))
>>> val = DataLoader(ArrayDataset(X_val, y_val), batch_size=256, transform=mean)

Plain callables work too: ``f(x)`` is called as is, and ``f(x, rng)`` gets the generator when its
signature has a parameter named ``rng``.
"""
import inspect

import numpy as np

from chainrule import checks


def accepts_rng(fn):
    """Whether ``fn`` takes the loader's generator: a ``Transform``, or a callable with a
    parameter named ``rng``."""
    if isinstance(fn, Transform):
        return True
    try:
        return "rng" in inspect.signature(fn).parameters
    except (TypeError, ValueError):   # builtins without a signature
        return False


def apply_transform(fn, x, rng):
    """``fn(x, rng=rng)`` if ``fn`` takes a generator, else ``fn(x)``."""
    return fn(x, rng=rng) if accepts_rng(fn) else fn(x)


def _resolve_rng(rng):
    if rng is None:
        from chainrule import backend
        return backend.get_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"transform: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _as_float(x):
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def _check_batch(x, name, min_ndim=2):
    x = _as_float(x)
    if x.ndim < min_ndim:
        shape = "(N, C, H, W)" if min_ndim == 4 else "(N, C, ...)"
        raise ValueError(f"{name}: expected a batch {shape}, got shape {x.shape}")
    return x


def _pair(v, name, what):
    # the type only (2.5 and True are refused, not truncated); the callers check the range
    return checks.int_tuple(name, what, v, 2, low=None)


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _channel_stat(stat, x, name, what):
    """Broadcast a scalar, (C,) or (C, ...) statistic against a batch x (N, C, ...)."""
    stat = np.asarray(stat)
    if stat.ndim == 0:
        return stat.astype(x.dtype)
    if stat.ndim == 1:
        if stat.shape[0] != x.shape[1]:
            raise ValueError(f"{name}: {what} has {stat.shape[0]} channels, the batch {x.shape} "
                             f"has {x.shape[1]}")
        return stat.reshape((1, -1) + (1,) * (x.ndim - 2)).astype(x.dtype)
    if stat.shape != x.shape[1:]:
        raise ValueError(f"{name}: {what} has shape {stat.shape}, expected (C,) or one example's "
                         f"shape {x.shape[1:]}")
    return stat[None].astype(x.dtype)


class Transform:
    """Base class: subclasses implement ``__call__(self, x, rng=None)`` on a batch (N, C, ...)."""

    def __call__(self, x, rng=None):
        raise TypeError(f"{type(self).__name__} must implement __call__(x, rng=None)")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args().items())
        return f"{type(self).__name__}({args})"

    def _repr_args(self):
        return {}


class Compose(Transform):
    """Apply ``transforms`` in order, each drawing from the same generator.

    >>> t = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), Normalize.fit(X_train)])
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for k, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"Compose: item {k} is not callable ({type(t).__name__})")

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = apply_transform(t, x, rng)
        return x

    def __repr__(self):
        inner = ",\n".join(f"    {t!r}" for t in self.transforms)
        return f"Compose([\n{inner}\n])"


class MeanSubtraction(Transform):
    """Subtract a mean computed on the training set: ``x - mean``.

    ``mean`` is a scalar (one global mean), a (C,) vector (one per channel, broadcast over the
    spatial positions) or one example's shape (C, H, W) (the mean image, as AlexNet subtracted).
    Compute it from the training data with ``MeanSubtraction.fit`` and reuse the same object for
    validation and test data.

    >>> sub = MeanSubtraction.fit(X_train, per_channel=True)   # sub.mean: (C,)
    >>> X_test_centred = sub(X_test)
    """

    def __init__(self, mean):
        self.mean = np.asarray(mean, dtype=np.float64)
        if not np.all(np.isfinite(self.mean)):
            raise ValueError(f"MeanSubtraction: mean must be finite, got {self.mean.tolist()}")

    @classmethod
    def fit(cls, X, per_channel=True, per_pixel=False):
        """A ``MeanSubtraction`` whose mean comes from training data X (N, C, ...).

        ``per_channel=True``: one mean per channel (C,); ``False``: one global mean. ``per_pixel=True``
        takes the mean image (C, H, W) instead (overrides ``per_channel``). Accumulated in float64.
        """
        X = _check_batch(X, "MeanSubtraction.fit")
        if per_pixel:
            return cls(X.mean(axis=0, dtype=np.float64))
        if per_channel:
            axes = (0,) + tuple(range(2, X.ndim))
            return cls(X.mean(axis=axes, dtype=np.float64))
        return cls(X.mean(dtype=np.float64))

    def __call__(self, x, rng=None):
        x = _check_batch(x, "MeanSubtraction", min_ndim=1 if self.mean.ndim == 0 else 2)
        return x - _channel_stat(self.mean, x, "MeanSubtraction", "the mean")

    def _repr_args(self):
        return {"mean": np.round(self.mean, 4).tolist() if self.mean.ndim <= 1 else self.mean.shape}


class Normalize(Transform):
    """Per-channel standardisation ``(x - mean) / std`` (mean and std: scalars or (C,)).

    >>> norm = Normalize.fit(X_train)          # per-channel mean and std of the training set
    >>> norm = Normalize([0.4914, 0.4822, 0.4465], [0.247, 0.243, 0.261])
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        if np.any(self.std <= 0) or not np.all(np.isfinite(self.std)):
            raise ValueError(f"Normalize: std must be positive and finite, got {self.std.tolist()}")
        if not np.all(np.isfinite(self.mean)):
            raise ValueError(f"Normalize: mean must be finite, got {self.mean.tolist()}")
        if self.mean.ndim > 1 or self.std.ndim > 1 or (
                self.mean.size > 1 and self.std.size > 1 and self.mean.shape != self.std.shape):
            raise ValueError(f"Normalize: mean and std must be scalars or (C,) vectors of one length, "
                             f"got shapes {self.mean.shape} and {self.std.shape}")

    @classmethod
    def fit(cls, X, eps=1e-8):
        """A ``Normalize`` with the per-channel mean and std of training data X (N, C, ...).

        A constant channel (std below ``eps``) gets std 1, so it is only centred.
        """
        X = _check_batch(X, "Normalize.fit")
        axes = (0,) + tuple(range(2, X.ndim))
        mean = X.mean(axis=axes, dtype=np.float64)
        std = X.std(axis=axes, dtype=np.float64)
        return cls(mean, np.where(std < eps, 1.0, std))

    def __call__(self, x, rng=None):
        x = _check_batch(x, "Normalize")
        mean = _channel_stat(self.mean, x, "Normalize", "mean")
        std = _channel_stat(self.std, x, "Normalize", "std")
        return (x - mean) / std

    def _repr_args(self):
        return {"mean": np.round(self.mean, 4).tolist(), "std": np.round(self.std, 4).tolist()}


class RandomCrop(Transform):
    """Pad each image by ``padding`` then cut a random ``size`` window out of it, independently per
    image: x (N, C, H, W) -> (N, C, h, w).

    ``size`` is an int or (h, w); ``padding`` an int or (pad_h, pad_w), added on both sides;
    ``pad_mode`` any ``numpy.pad`` mode ('constant' fills with ``fill``, 'reflect', 'edge').
    ``RandomCrop(32, padding=4)`` on 32x32 images shifts each by up to 4 pixels (the CIFAR recipe).
    """

    def __init__(self, size, padding=0, pad_mode="constant", fill=0.0):
        self.size = _pair(size, "RandomCrop", "size")
        self.padding = _pair(padding, "RandomCrop", "padding")
        if min(self.size) < 1:
            raise ValueError(f"RandomCrop: size must be positive, got {self.size}")
        if min(self.padding) < 0:
            raise ValueError(f"RandomCrop: padding must be non-negative, got {self.padding}")
        self.pad_mode = checks.choice(type(self).__name__, "pad_mode", pad_mode, _PAD_MODES)
        self.fill = checks.real(type(self).__name__, "fill", fill)

    def _pad(self, x):
        ph, pw = self.padding
        if ph == pw == 0:
            return x
        width = ((0, 0), (0, 0), (ph, ph), (pw, pw))
        if self.pad_mode == "constant":
            return np.pad(x, width, mode="constant", constant_values=self.fill)
        return np.pad(x, width, mode=self.pad_mode)

    def __call__(self, x, rng=None):
        name = type(self).__name__
        x = _check_batch(x, name, min_ndim=4)
        rng = _resolve_rng(rng)
        h, w = self._out_size(x)
        xp = self._pad(x)
        n, _, hp, wp = xp.shape
        if h > hp or w > wp:
            raise ValueError(f"{name}: crop {h}x{w} is larger than the padded image {hp}x{wp} "
                             f"(input {x.shape[2]}x{x.shape[3]}, padding {self.padding})")
        top = rng.integers(0, hp - h + 1, size=n)
        left = rng.integers(0, wp - w + 1, size=n)
        # All windows as a view (N, C, hp-h+1, wp-w+1, h, w); one gather picks each image's own
        # window, so there is no Python loop over the batch.
        windows = np.lib.stride_tricks.sliding_window_view(xp, (h, w), axis=(2, 3))
        return windows[np.arange(n), :, top, left]     # (N, C, h, w): advanced axes go first

    def _out_size(self, x):
        return self.size

    def _repr_args(self):
        return {"size": self.size, "padding": self.padding, "pad_mode": self.pad_mode}


class RandomShift(RandomCrop):
    """Jitter each image by a random offset of up to ``max_shift`` pixels in each direction,
    keeping its size: the border that moves in is ``fill`` (or ``pad_mode``'s values).

    Equivalent to ``RandomCrop((H, W), padding=max_shift)`` for H x W inputs.
    """

    def __init__(self, max_shift, pad_mode="constant", fill=0.0):
        if min(checks.int_tuple("RandomShift", "max_shift", max_shift, 2, low=None)) < 0:
            checks.fail("RandomShift", "max_shift", "non-negative ints", max_shift)
        super().__init__(1, padding=max_shift, pad_mode=pad_mode, fill=fill)
        self.size = None

    def _out_size(self, x):
        return x.shape[2], x.shape[3]

    def _repr_args(self):
        return {"max_shift": self.padding, "pad_mode": self.pad_mode}


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right (the last axis) with probability ``p``, independently per image."""

    def __init__(self, p=0.5):
        self.p = checks.probability("RandomHorizontalFlip", "p", p)

    def __call__(self, x, rng=None):
        x = _check_batch(x, "RandomHorizontalFlip", min_ndim=3)
        flip = _resolve_rng(rng).random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = x[flip, ..., ::-1]
        return out

    def _repr_args(self):
        return {"p": self.p}


class RandomApply(Transform):
    """Apply ``transform`` to each image with probability ``p``, independently per image; the
    others pass unchanged. The transform must keep the image shape.

    >>> RandomApply(RandomShift(1), p=0.5)     # half the digits jittered by a pixel, half as they are
    """

    def __init__(self, transform, p=0.5):
        if not callable(transform):
            raise TypeError(f"RandomApply: transform must be callable, got {type(transform).__name__}")
        self.transform, self.p = transform, checks.probability("RandomApply", "p", p)

    def __call__(self, x, rng=None):
        x = _check_batch(x, "RandomApply", min_ndim=1)
        rng = _resolve_rng(rng)
        chosen = rng.random(x.shape[0]) < self.p
        out = x.copy()
        if chosen.any():
            y = np.asarray(apply_transform(self.transform, x[chosen], rng))
            if y.shape != x[chosen].shape:
                raise ValueError(f"RandomApply: {self.transform!r} changed the shape "
                                 f"{x[chosen].shape} to {y.shape}; it must keep it")
            out[chosen] = y
        return out

    def _repr_args(self):
        return {"transform": self.transform, "p": self.p}
