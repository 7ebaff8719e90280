"""The UCI handwritten digits (8x8 images, 10 classes, 1797 examples), shipped with scikit-learn."""
import numpy as np


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("chainrule.data.datasets.digits needs scikit-learn, which ships the data: "
                          "pip install chainrule[datasets]") from e
    return load_digits()


def digits(images=False):
    """The digits dataset as ``(X, y)``.

    X is float32 in [0, 1] (the raw pixels are 0..16): (N, 64) flat, or (N, 1, 8, 8) with
    ``images=True`` for convolutional nets. y is int64 (N,) in 0..9. N = 1797. Read from the copy
    inside scikit-learn: no download.

    >>> X, y = digits()            # (1797, 64), (1797,)
    """
    bunch = _load_digits()
    X = (bunch.data / 16.0).astype(np.float32)
    if images:
        X = X.reshape(-1, 1, 8, 8)
    return X, bunch.target.astype(np.int64)


def digits_split(test_fraction=0.2, seed=0, images=False):
    """The digits dataset split into ``(X_train, y_train, X_test, y_test)``, stratified by class.

    Shapes and dtypes as in ``digits``; the test part holds ``ceil(test_fraction * 1797)`` examples
    (360 for 0.2) with every class in the same proportion as in the training part.
    """
    from chainrule.data.dataset import train_val_split
    X, y = digits(images=images)
    X_tr, X_te, y_tr, y_te = train_val_split(X, y, val_fraction=test_fraction, seed=seed, stratify=y)
    return X_tr, y_tr, X_te, y_te
