"""DataLoader: (shuffled) minibatches of a dataset as tuples of Tensors."""
import numpy as np

from chainrule import checks
from chainrule.data.dataset import Dataset, _rng_from, collate
from chainrule.data.transforms import accepts_rng


def _child_rng(generator):
    """An independent generator derived from ``generator`` without drawing from it."""
    try:
        return generator.spawn(1)[0]          # NumPy >= 1.25
    except AttributeError:
        seq = getattr(generator.bit_generator, "_seed_seq", None)
        if isinstance(seq, np.random.SeedSequence):
            return np.random.default_rng(seq.spawn(1)[0])
    except TypeError:                          # a bit generator made without a SeedSequence
        pass
    return np.random.default_rng(generator.bit_generator.random_raw())


class DataLoader:
    """Iterate over ``dataset`` in minibatches.

    Each iteration yields a tuple with one ``chainrule.Tensor`` per field of the examples, e.g.
    ``(x, y)`` with x (B, D) and y (B,). Float arrays keep their dtype (the bundled datasets are
    float32); integer arrays become int64, the label dtype the losses expect.

    Args:
        dataset: a ``Dataset`` (array datasets and their Subsets are gathered with one fancy-indexing
            call per array per batch) or any object with ``__len__`` and ``__getitem__``, whose
            examples are stacked field by field.
        batch_size: examples per batch; the last batch may be smaller unless ``drop_last``.
        shuffle: draw a new permutation at the start of every epoch (every ``iter()``).
        drop_last: skip the final incomplete batch.
        seed / generator: the loader's own ``numpy.random.Generator`` for shuffling is seeded from
            ``seed``, or is ``generator``; with neither it is seeded from chainrule's global RNG when
            the loader is built, so ``chainrule.manual_seed`` makes runs repeatable.
        transform: ``transform(x_batch) -> array`` applied to the first field of each batch, as
            arrays, before the Tensors are made (the hook for augmentation). A transform that takes
            a generator (``chainrule.data.transforms.Transform``, or any callable with a parameter
            named ``rng``) is called ``transform(x_batch, rng=g)`` with the loader's augmentation
            generator ``g``: a child of the shuffling generator that never draws from it, so a
            seeded loader repeats its batches exactly, each epoch gets new random draws, and adding
            augmentation does not change the shuffling order.

    >>> loader = DataLoader(ArrayDataset(X, y), batch_size=64, shuffle=True, seed=0)
    >>> for xb, yb in loader: ...
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, generator=None,
                 seed=None, transform=None):
        batch_size = checks.integer("DataLoader", "batch_size", batch_size, 1, rule="an integer at least 1")
        shuffle = checks.flag("DataLoader", "shuffle", shuffle)
        drop_last = checks.flag("DataLoader", "drop_last", drop_last)
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__, got "
                            f"{type(dataset).__name__}; wrap arrays as ArrayDataset(X, y)")
        if isinstance(dataset, np.ndarray):
            raise TypeError("DataLoader: got a bare array; wrap it as ArrayDataset(X, y) or "
                            "TensorDataset(X) so examples are tuples")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {type(transform).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        # Always made, even without shuffle, so turning shuffle on later does not change which
        # global-RNG draws other components see.
        self.generator = _rng_from(seed, generator, "DataLoader")
        self.transform_generator = _child_rng(self.generator)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batch_indices(self):
        n = len(self.dataset)
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            yield order[start:start + self.batch_size]

    def _gather(self, idx):
        if isinstance(self.dataset, Dataset):
            return self.dataset.get_batch(idx)
        return collate([self.dataset[int(i)] for i in idx], indices=idx)

    def iter_arrays(self):
        """One epoch of batches as tuples of NumPy arrays (no Tensors), with the same dtypes."""
        for idx in self._batch_indices():
            batch = list(self._gather(idx))
            if self.transform is not None and batch:
                if accepts_rng(self.transform):
                    x = self.transform(batch[0], rng=self.transform_generator)
                else:
                    x = self.transform(batch[0])
                x = np.asarray(x)
                if x.ndim == 0 or x.shape[0] != len(idx):
                    raise ValueError(f"DataLoader: transform must keep the batch dimension, got "
                                     f"shape {x.shape} from a batch of {len(idx)}")
                batch[0] = x
            yield tuple(a.astype(np.int64, copy=False) if a.dtype.kind in "iu" else a
                        for a in batch)

    def __iter__(self):
        from chainrule.autograd import Tensor
        for batch in self.iter_arrays():
            yield tuple(Tensor(a) for a in batch)

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, batches={len(self)})")
