"""MNIST-1D (Greydanus, 2020): 10 classes of 1-D signals of length 40, generated on the spot."""
import random

import numpy as np


def mnist1d(seed=None):
    """Generate MNIST-1D and return ``(X_train, y_train, X_test, y_test)``.

    X is float32, (4000, 40) for training and (1000, 40) for testing, standardised over the whole
    dataset; y is int64 in 0..9. ``seed=None`` gives the reference dataset (the package's seed 42);
    another seed gives a fresh draw of the same distribution. Generated locally (a few seconds),
    never downloaded, nothing cached on disk.

    >>> X_tr, y_tr, X_te, y_te = mnist1d()
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise ImportError("chainrule.data.datasets.mnist1d needs the mnist1d package: "
                          "pip install chainrule[datasets]") from e
    args = get_dataset_args()
    if seed is not None:
        args.seed = int(seed)
    # make_dataset reseeds NumPy's and Python's global RNGs; put them back so loading data does not
    # silently change the random streams of the user's own code.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return (np.asarray(data["x"], dtype=np.float32), np.asarray(data["y"], dtype=np.int64),
            np.asarray(data["x_test"], dtype=np.float32), np.asarray(data["y_test"], dtype=np.int64))
