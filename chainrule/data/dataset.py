"""Datasets: a map from an index to an example, plus splits.

A ``Dataset`` answers ``len(ds)`` and ``ds[i]``. Array-backed datasets (``TensorDataset`` /
``ArrayDataset``) also answer ``ds[idx]`` for an integer array ``idx`` with whole batches, which is
the fast path ``DataLoader`` uses: one fancy-indexing call per array per batch instead of a Python
loop over examples.
"""
import numbers

import numpy as np

from chainrule import checks


def _rng_from(seed=None, generator=None, where="data"):
    """A ``numpy.random.Generator`` for one shuffling consumer.

    ``generator`` is used as is; ``seed`` seeds a fresh one; with neither, a child generator is seeded
    from chainrule's global RNG, so ``chainrule.manual_seed(s)`` makes every loader and split
    repeatable without each call needing its own seed.
    """
    if generator is not None and seed is not None:
        raise ValueError(f"{where}: pass seed or generator, not both")
    if generator is not None:
        if not isinstance(generator, np.random.Generator):
            raise TypeError(f"{where}: generator must be a numpy.random.Generator, "
                            f"got {type(generator).__name__}")
        return generator
    if seed is not None:
        return np.random.default_rng(checks.integer(where, "seed", seed, 0))
    # Looked up on every call, not cached: manual_seed() swaps the global generator.
    from chainrule import backend
    return np.random.default_rng(backend.get_rng().integers(2**63))


def _is_index_array(index):
    return isinstance(index, (np.ndarray, list, range)) and not isinstance(index, str)


class Dataset:
    """Base class: subclasses implement ``__len__`` and ``__getitem__(i) -> example``.

    An example is usually a tuple ``(x, y)`` of arrays or scalars; ``DataLoader`` stacks the
    examples of a batch field by field. Subclasses that can gather a whole batch at once override
    ``get_batch``.
    """

    def __len__(self):
        raise TypeError(f"{type(self).__name__} must implement __len__")

    def __getitem__(self, index):
        raise TypeError(f"{type(self).__name__} must implement __getitem__")

    def get_batch(self, indices):
        """The examples at ``indices`` (an int array (B,)) collated into a tuple of arrays (B, ...)."""
        return collate([self[int(i)] for i in indices], indices=indices)


def collate(items, indices=None):
    """Stack a list of examples into a tuple of batch arrays, field by field.

    A tuple/list example gives one batch array per field; any other example (an array or a scalar)
    gives a 1-tuple. ``indices`` only serve the error message.
    """
    if not items:
        return ()
    first = items[0]
    fields = len(first) if isinstance(first, (tuple, list)) else None
    out = []
    for k in range(fields if fields is not None else 1):
        column = []
        for j, item in enumerate(items):
            if fields is None:
                column.append(np.asarray(item))
                continue
            if not isinstance(item, (tuple, list)) or len(item) != fields:
                where = f"dataset index {indices[j]}" if indices is not None else f"item {j}"
                got = len(item) if isinstance(item, (tuple, list)) else type(item).__name__
                raise ValueError(f"collate: {where} has {got} fields, expected {fields} "
                                 f"like the first example of the batch")
            column.append(np.asarray(item[k]))
        shape0 = column[0].shape
        for j, a in enumerate(column):
            if a.shape != shape0:
                where = f"dataset index {indices[j]}" if indices is not None else f"item {j}"
                raise ValueError(f"collate: field {k} of {where} has shape {a.shape}, but the first "
                                 f"example of the batch has {shape0}; examples in a batch must "
                                 f"have equal shapes")
        out.append(np.stack(column))
    return tuple(out)


class TensorDataset(Dataset):
    """Examples are rows of equally long arrays: ``ds[i] == (a[i], b[i], ...)``.

    Each array is anything ``np.asarray`` accepts, with the example index first: features (N, D)
    or (N, C, H, W), labels (N,). ``ds[idx]`` with an integer array ``idx`` (B,) returns the batch
    ``(a[idx], b[idx], ...)``.

    >>> ds = TensorDataset(np.zeros((10, 3)), np.arange(10))
    >>> x, y = ds[2]; xb, yb = ds[np.array([0, 5])]
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError(f"{type(self).__name__}: expected at least one array")
        arrays = tuple(np.asarray(a) for a in arrays)
        for k, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"{type(self).__name__}: array {k} is a scalar; every array needs "
                                 f"a first dimension indexing the examples")
        sizes = [a.shape[0] for a in arrays]
        if len(set(sizes)) != 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"{type(self).__name__}: all arrays must have the same first dimension "
                             f"(number of examples), got sizes {sizes} (shapes {shapes})")
        self.arrays = arrays

    def __len__(self):
        return self.arrays[0].shape[0]

    def __getitem__(self, index):
        if isinstance(index, numbers.Integral):
            n = len(self)
            if not -n <= index < n:
                raise IndexError(f"{type(self).__name__}: index {index} out of range "
                                 f"for {n} examples")
            return tuple(a[index] for a in self.arrays)
        if _is_index_array(index):
            return self.get_batch(index)
        if isinstance(index, slice):
            return tuple(a[index] for a in self.arrays)
        raise TypeError(f"{type(self).__name__}: index must be an int, an integer array or a "
                        f"slice, got {type(index).__name__}")

    def get_batch(self, indices):
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu" and indices.size:
            raise TypeError(f"{type(self).__name__}: batch indices must be integers, "
                            f"got dtype {indices.dtype}")
        # One gather per array: this is what keeps the loader free of per-example Python work.
        return tuple(a[indices] for a in self.arrays)

    def __repr__(self):
        shapes = ", ".join(f"{a.shape} {a.dtype}" for a in self.arrays)
        return f"{type(self).__name__}({shapes})"


class ArrayDataset(TensorDataset):
    """A ``TensorDataset`` of features ``X`` (N, ...) and optional targets ``y`` (N, ...).

    ``ds.X`` and ``ds.y`` give the arrays back; without ``y`` examples are 1-tuples ``(x,)``.
    """

    def __init__(self, X, y=None):
        if y is None:
            super().__init__(X)
        else:
            super().__init__(X, y)

    @property
    def X(self):
        return self.arrays[0]

    @property
    def y(self):
        return self.arrays[1] if len(self.arrays) > 1 else None


class Subset(Dataset):
    """The examples of ``dataset`` at ``indices``, in that order: ``sub[i] == dataset[indices[i]]``.

    Batches pass straight through to the parent's ``get_batch``, so a Subset of an array dataset
    keeps the fast path.
    """

    def __init__(self, dataset, indices):
        indices = np.asarray(indices)
        if indices.size == 0:
            indices = indices.astype(np.int64)
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise ValueError(f"Subset: indices must be a 1-D integer array, got shape "
                             f"{indices.shape} dtype {indices.dtype}")
        n = len(dataset)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            bad = indices[(indices < -n) | (indices >= n)][0]
            raise IndexError(f"Subset: index {bad} out of range for a dataset of {n} examples")
        self.dataset = dataset
        self.indices = np.where(indices < 0, indices + n, indices).astype(np.int64)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, numbers.Integral):
            return self.dataset[int(self.indices[index])]
        if _is_index_array(index) or isinstance(index, slice):
            return self.get_batch(np.arange(len(self))[index] if isinstance(index, slice) else index)
        raise TypeError(f"Subset: index must be an int, an integer array or a slice, "
                        f"got {type(index).__name__}")

    def get_batch(self, indices):
        parent = self.indices[np.asarray(indices, dtype=np.int64)]
        if isinstance(self.dataset, Dataset):
            return self.dataset.get_batch(parent)
        return collate([self.dataset[int(i)] for i in parent], indices=parent)

    def __repr__(self):
        return f"Subset({len(self)} of {self.dataset!r})"


def random_split(dataset, lengths, seed=0, generator=None):
    """Split ``dataset`` into non-overlapping random ``Subset``s.

    ``lengths`` are example counts summing to ``len(dataset)``, or fractions summing to 1; fractions
    are floored and the leftover examples dealt one each to the first subsets (PyTorch's rule).
    ``seed=None`` draws from chainrule's global RNG.

    >>> train, val = random_split(ds, [0.8, 0.2], seed=0)
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty")
    for x in lengths:
        checks.real("random_split", "each of lengths", x, 0)     # refuses bools, NaN, inf, < 0
    if all(isinstance(x, numbers.Integral) for x in lengths):
        counts = [int(x) for x in lengths]
        if sum(counts) != n:
            raise ValueError(f"random_split: lengths {counts} sum to {sum(counts)}, "
                             f"but the dataset has {n} examples")
    else:
        if any(x > 1 for x in lengths) or not np.isclose(sum(lengths), 1.0):
            raise ValueError(f"random_split: fractions {lengths} sum to {sum(lengths)}, expected 1 "
                             f"(or pass integer counts summing to {n})")
        counts = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    order = _rng_from(seed, generator, "random_split").permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[bounds[i]:bounds[i + 1]]) for i in range(len(counts))]


def _stratified_val_counts(counts, n_val):
    """Per-class validation counts summing to ``n_val``, proportional to the class ``counts``.

    Largest-remainder rounding keeps every class within one example of its exact share.
    """
    exact = counts * (n_val / counts.sum())
    take = np.floor(exact).astype(np.int64)
    short = n_val - take.sum()
    # Leftovers go to the largest remainders; stable sort keeps ties in class order (repeatable).
    order = np.argsort(-(exact - take), kind="stable")
    take[order[:short]] += 1
    return take


def train_val_split(*arrays, val_fraction=0.2, seed=0, stratify=None, shuffle=True):
    """Split arrays into train and validation parts, like sklearn's ``train_test_split``.

    Returns ``(a_train, a_val, b_train, b_val, ...)``: for each input array its train part, then
    its validation part (sklearn's order), so ``X_tr, X_val, y_tr, y_val = train_val_split(X, y)``.

    ``val_fraction`` is a fraction in (0, 1) (the count is rounded up, as sklearn does) or an integer
    count. ``stratify`` (N,) labels keep each class's proportion equal in both parts (within one
    example). ``shuffle=False`` takes the last examples as validation. ``seed=None`` draws from
    chainrule's global RNG.
    """
    if not arrays:
        raise ValueError("train_val_split: expected at least one array")
    arrays = [np.asarray(a) for a in arrays]
    n = TensorDataset(*arrays).__len__()  # validates equal first dimensions
    shuffle = checks.flag("train_val_split", "shuffle", shuffle)
    if isinstance(val_fraction, numbers.Integral) and not isinstance(val_fraction, bool):
        n_val = int(val_fraction)
    elif (isinstance(val_fraction, numbers.Real) and not isinstance(val_fraction, bool)
          and 0.0 < val_fraction < 1.0):
        n_val = int(np.ceil(val_fraction * n))
    else:
        raise ValueError(f"train_val_split: val_fraction must be a fraction in (0, 1) or an "
                         f"integer count, got {val_fraction!r}")
    if not 1 <= n_val <= n - 1:
        raise ValueError(f"train_val_split: val_fraction={val_fraction!r} gives {n_val} validation "
                         f"and {n - n_val} training examples out of {n}; both must be at least 1")

    if stratify is not None:
        if not shuffle:
            raise ValueError("train_val_split: stratify needs shuffle=True")
        labels = np.asarray(stratify)
        if labels.shape[:1] != (n,):
            raise ValueError(f"train_val_split: stratify must hold one label per example, "
                             f"expected shape ({n},), got {labels.shape}")
        rng = _rng_from(seed, None, "train_val_split")
        classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        take = _stratified_val_counts(counts, n_val)
        train_idx, val_idx = [], []
        for c in range(len(classes)):
            members = rng.permutation(np.flatnonzero(inverse.reshape(-1) == c))
            val_idx.append(members[:take[c]])
            train_idx.append(members[take[c]:])
        # Shuffle again so the parts are not ordered by class.
        train_idx = rng.permutation(np.concatenate(train_idx))
        val_idx = rng.permutation(np.concatenate(val_idx))
    elif shuffle:
        order = _rng_from(seed, None, "train_val_split").permutation(n)
        train_idx, val_idx = order[:n - n_val], order[n - n_val:]
    else:
        train_idx, val_idx = np.arange(n - n_val), np.arange(n - n_val, n)

    out = []
    for a in arrays:
        out += [a[train_idx], a[val_idx]]
    return tuple(out)
