"""Classification metrics on NumPy arrays: accuracy, top-k accuracy, zero-one loss, the confusion
matrix, per-class precision / recall / F1 and a text report. They follow scikit-learn's conventions
(confusion matrix rows are true classes, columns predicted; precision of a class never predicted is
0), and the tests check them against scikit-learn.

Predictions may be labels (N,) or scores (N, C) (logits or probabilities: the argmax is taken).

>>> scores = predict(model, X_test)                  # (N, 10)
>>> accuracy(y_test, scores), top_k_accuracy(y_test, scores, k=3)
(0.975, 0.997)
>>> print(classification_report(y_test, scores))
"""
import numpy as np

from ..autograd import Tensor

__all__ = ["accuracy", "top_k_accuracy", "zero_one_loss", "confusion_matrix",
           "precision_recall_f1", "classification_report"]


def _array(a):
    return np.asarray(a.data if isinstance(a, Tensor) else a)


def _labels(y_true, y_pred, where):
    """(true labels (N,), predicted labels (N,)) as int64; scores (N, C) become their argmax."""
    y_true, y_pred = _array(y_true), _array(y_pred)
    if y_true.ndim == 2 and y_true.shape[1] == 1:
        y_true = y_true[:, 0]
    if y_true.ndim != 1:
        raise ValueError(f"{where}: y_true must be labels (N,), got shape {y_true.shape}")
    if y_pred.ndim == 2:
        y_pred = y_pred[:, 0] if y_pred.shape[1] == 1 and y_pred.dtype.kind in "iub" \
            else y_pred.argmax(axis=1)
    if y_pred.ndim != 1:
        raise ValueError(f"{where}: y_pred must be labels (N,) or scores (N, C), got shape "
                         f"{y_pred.shape}")
    if len(y_true) != len(y_pred):
        raise ValueError(f"{where}: y_true has {len(y_true)} entries but y_pred {len(y_pred)}")
    for name, a in (("y_true", y_true), ("y_pred", y_pred)):
        if a.dtype.kind == "f":
            if not np.all(a == np.round(a)):
                raise ValueError(f"{where}: {name} must hold class labels (integers), got floats")
        elif a.dtype.kind not in "iub":
            raise TypeError(f"{where}: {name} must hold integer class labels, got dtype {a.dtype}")
    return y_true.astype(np.int64), y_pred.astype(np.int64)


def accuracy(y_true, y_pred):
    """Fraction of correct predictions (labels (N,) or scores (N, C))."""
    t, p = _labels(y_true, y_pred, "accuracy")
    return float((t == p).mean()) if len(t) else 0.0


def zero_one_loss(y_true, y_pred, normalize=True):
    """Fraction (or, with ``normalize=False``, number) of wrong predictions: 1 - accuracy."""
    t, p = _labels(y_true, y_pred, "zero_one_loss")
    wrong = int((t != p).sum())
    return (wrong / len(t) if len(t) else 0.0) if normalize else wrong


def top_k_accuracy(y_true, scores, k=5):
    """Fraction of examples whose true class is among the ``k`` highest of ``scores`` (N, C).

    Among equal scores the higher class index ranks first, as in scikit-learn's
    ``top_k_accuracy_score``.
    """
    t = _array(y_true).reshape(-1).astype(np.int64)
    s = _array(scores)
    if s.ndim != 2:
        raise ValueError(f"top_k_accuracy: scores must be (N, C), got shape {s.shape}")
    if len(t) != len(s):
        raise ValueError(f"top_k_accuracy: y_true has {len(t)} entries but scores {len(s)} rows")
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"top_k_accuracy: k must be a positive integer, got {k!r}")
    if len(t) == 0:
        return 0.0
    if k >= s.shape[1]:
        return 1.0
    top = np.argsort(s, axis=1, kind="stable")[:, ::-1][:, :k]
    return float((top == t[:, None]).any(axis=1).mean())


def _n_classes(t, p, num_classes):
    if num_classes is None:
        return int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got y_true in "
                         f"{t.min()}..{t.max()}")
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got y_pred in "
                         f"{p.min()}..{p.max()}")
    return int(num_classes)


def confusion_matrix(y_true, y_pred, num_classes=None):
    """int64 (C, C) counts: entry [i, j] is the number of examples of class i predicted as j.

    ``num_classes`` defaults to the largest label seen plus one.
    """
    t, p = _labels(y_true, y_pred, "confusion_matrix")
    if t.size and min(t.min(), p.min()) < 0:
        raise ValueError("confusion_matrix: labels must be >= 0")
    c = _n_classes(t, p, num_classes)
    return np.bincount(t * c + p, minlength=c * c).reshape(c, c).astype(np.int64)


def precision_recall_f1(y_true, y_pred, num_classes=None, zero_division=0.0):
    """Per-class precision, recall, F1 and support, with macro and support-weighted averages.

    Returns a dict: ``precision``, ``recall``, ``f1`` (float64 (C,)), ``support`` (int64 (C,)),
    ``macro`` and ``weighted`` (dicts of precision/recall/f1), ``accuracy``. A ratio with a zero
    denominator (a class never predicted, or absent) is ``zero_division``, as in scikit-learn.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)

    def ratio(num, den):
        out = np.full(num.shape, float(zero_division))
        np.divide(num, den, out=out, where=den > 0)
        return out

    precision, recall = ratio(tp, predicted), ratio(tp, support)
    f1 = ratio(2 * tp, predicted + support)    # = 2PR / (P + R), zero when tp = 0
    total = support.sum()
    w = support / total if total else np.zeros_like(tp)
    res = {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64),
           "accuracy": float(tp.sum() / total) if total else 0.0}
    res["macro"] = {k: float(res[k].mean()) if len(tp) else 0.0 for k in ("precision", "recall", "f1")}
    res["weighted"] = {k: float((res[k] * w).sum()) for k in ("precision", "recall", "f1")}
    return res


def classification_report(y_true, y_pred, class_names=None, num_classes=None, digits=4):
    """A text table, one row per class (precision, recall, F1, support), then accuracy and the
    macro and weighted averages, laid out like scikit-learn's ``classification_report``."""
    r = precision_recall_f1(y_true, y_pred, num_classes)
    c = len(r["support"])
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"classification_report: {len(names)} class names for {c} classes")
    width = max([len(n) for n in names] + [len("weighted avg")])
    head = f"{'':>{width}} {'precision':>10} {'recall':>10} {'f1-score':>10} {'support':>10}"
    fmt = lambda v: f"{v:>10.{digits}f}"
    lines = [head, ""]
    for i, n in enumerate(names):
        lines.append(f"{n:>{width}} {fmt(r['precision'][i])} {fmt(r['recall'][i])} "
                     f"{fmt(r['f1'][i])} {r['support'][i]:>10d}")
    total = int(r["support"].sum())
    lines += ["", f"{'accuracy':>{width}} {'':>10} {'':>10} {fmt(r['accuracy'])} {total:>10d}"]
    for avg in ("macro", "weighted"):
        a = r[avg]
        lines.append(f"{avg + ' avg':>{width}} {fmt(a['precision'])} {fmt(a['recall'])} "
                     f"{fmt(a['f1'])} {total:>10d}")
    return "\n".join(lines) + "\n"
