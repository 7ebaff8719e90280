"""Rosenblatt's perceptron (1957), exactly as the course teaches it.

    w(0) = 0
    for t = 1..T:
        receive x(t);  y_hat = sign(<w(t-1), x(t)>)       with sign(0) = +1
        receive y(t);  w(t) = w(t-1) + y(t) x(t) 1[y(t) != y_hat]

Pure NumPy and no autograd: the rule needs no gradient, only a dot product and an
addition. The bias is "suppressed" the way the course does it: a constant input
x_D = 1 whose weight w_D = b (``fit_bias=True``).

Example::

    >>> clf = Perceptron(fit_bias=False, trace=True)
    >>> clf.fit([[-1, 1], [1, 1], [-1, -1], [1, -1]], [-1, 1, -1, 1])
    >>> print(clf.format_trace())
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Perceptron", "TraceStep"]


@dataclass
class TraceStep:
    """One step of the perceptron rule, for teaching.

    ``x`` is the input as the rule sees it (with the constant 1 last when the bias is fitted),
    ``w`` the weights before the step and ``new_w`` after it. ``prediction`` and ``label``
    are in {-1, +1}, the values the rule works with, whatever labels the user passed.
    """

    epoch: int
    step: int
    x: np.ndarray
    w: np.ndarray
    score: float
    prediction: int
    label: int
    match: bool
    updated: bool
    new_w: np.ndarray


class Perceptron:
    """Binary perceptron classifier trained by Rosenblatt's mistake-driven rule.

    Args:
        fit_bias: append a constant 1 feature so the last weight acts as the bias.
        lr: learning rate eta in w <- w + eta y x. With w starting at 0 it only rescales w,
            so predictions do not depend on it (kept for comparison with other libraries).
        zero_is_mistake: False (the course): sign(0) = +1, so a zero score is a mistake only
            when the label is -1. True (scikit-learn): update whenever y <w, x> <= 0.
        stop_when_separated: stop ``fit`` after the first epoch without a mistake.
        trace: record every step in ``trace_`` (a list of :class:`TraceStep`).

    Attributes (after fit):
        w_: (D + 1,) with the bias last, or (D,) without it.
        coef_: (D,) feature weights.   intercept_: the bias weight (0.0 if not fitted).
        classes_: (2,) the original labels; classes_[0] plays -1, classes_[1] plays +1.
        mistakes_: mistakes per epoch (per call for ``partial_fit``).
        n_iter_: epochs run by the last ``fit``.
    """

    def __init__(self, fit_bias: bool = True, lr: float = 1.0, zero_is_mistake: bool = False,
                 stop_when_separated: bool = True, trace: bool = False):
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"Perceptron: lr must be a positive number, got {lr!r}")
        self.fit_bias = bool(fit_bias)
        self.lr = float(lr)
        self.zero_is_mistake = bool(zero_is_mistake)
        self.stop_when_separated = bool(stop_when_separated)
        self.trace = bool(trace)
        self._reset()

    def __repr__(self):
        return (f"Perceptron(fit_bias={self.fit_bias}, lr={self.lr}, "
                f"zero_is_mistake={self.zero_is_mistake}, "
                f"stop_when_separated={self.stop_when_separated}, trace={self.trace})")

    # ------------------------------------------------------------------ training

    def fit(self, X, y, epochs: int = 100, shuffle: bool = False, seed=None):
        """Train from w = 0 for at most ``epochs`` passes over X (N, D) with labels y (N,).

        Returns self. With ``shuffle=True`` each epoch visits the examples in a fresh random
        order drawn from ``np.random.default_rng(seed)``, or from the library RNG
        (``chainrule.manual_seed``) when seed is None.
        """
        epochs = int(epochs)
        if epochs < 1:
            raise ValueError(f"Perceptron.fit: epochs must be >= 1, got {epochs}")
        X, y = self._check_Xy(X, y, refit=True)
        self._reset()
        self.classes_ = self._resolve_classes(y)
        self.n_features_in_ = X.shape[1]
        self.w_ = np.zeros(self._n_weights(), dtype=np.float64)
        Xa, ys = self._augment(X), self._encode(y)
        rng = _shuffle_rng(seed) if shuffle else None
        for epoch in range(epochs):
            order = rng.permutation(len(ys)) if shuffle else None
            self.mistakes_.append(self._epoch(Xa, ys, epoch, order))
            self.n_iter_ = epoch + 1
            if self.stop_when_separated and self.mistakes_[-1] == 0:
                break
        return self

    def partial_fit(self, X, y, classes=None):
        """One online pass over X (N, D) or a single example x (D,), continuing from current w.

        The first call sets the classes: from ``classes`` if given, else from y (labels in
        {-1, +1}, or exactly two distinct values). Appends this call's mistakes to ``mistakes_``.
        """
        X, y = self._check_Xy(X, y, refit=self.w_ is None)
        if self.w_ is None:
            if classes is not None:
                classes = np.asarray(classes).ravel()
                self.classes_ = self._resolve_classes(classes, need_two=True)
                self._check_known_labels(y)
            else:
                self.classes_ = self._resolve_classes(y)
            self.n_features_in_ = X.shape[1]
            self.w_ = np.zeros(self._n_weights(), dtype=np.float64)
        else:
            self._check_known_labels(y)
        # partial_fit calls count as epochs so trace rows stay distinguishable.
        epoch = len(self.mistakes_)
        self.mistakes_.append(self._epoch(self._augment(X), self._encode(y), epoch, None))
        return self

    def _epoch(self, Xa, ys, epoch, order):
        """One pass of the rule over Xa (N, D') and ys (N,) in {-1, +1}; returns mistakes."""
        w, lr, mistakes = self.w_, self.lr, 0
        for step, i in enumerate(range(len(ys)) if order is None else order):
            x, y = Xa[i], ys[i]
            score = float(x @ w)
            pred = 1 if score >= 0 else -1                      # sign(0) = +1
            mistake = (y * score <= 0) if self.zero_is_mistake else (pred != y)
            old = w.copy() if self.trace else None
            if mistake:
                w += (lr * y) * x                               # in place: w_ is this array
                mistakes += 1
            if self.trace:
                self.trace_.append(TraceStep(epoch, step, x.copy(), old, score, pred, int(y),
                                             bool(pred == y), bool(mistake), w.copy()))
        return mistakes

    # ---------------------------------------------------------------- inference

    def decision_function(self, X):
        """Scores <w, x> + b: (N,) for X (N, D), a float for a single x (D,)."""
        single = np.ndim(X) == 1
        X = self._check_X(X)
        s = self._augment(X) @ self.w_
        return float(s[0]) if single else s

    def predict(self, X):
        """Original labels: classes_[1] where the score is >= 0 (sign(0) = +1), else classes_[0].

        (N,) for X (N, D), one label for a single x (D,).
        """
        s = self.decision_function(X)
        out = self.classes_[(np.asarray(s) >= 0).astype(np.intp)]
        return out[()] if np.ndim(out) == 0 else out

    def score(self, X, y):
        """Accuracy of ``predict(X)`` against y (N,)."""
        X, y = self._check_Xy(X, y, refit=False)
        return float(np.mean(self.predict(X) == y))

    # ------------------------------------------------------------- attributes

    @property
    def coef_(self):
        self._check_fitted()
        return self.w_[:-1] if self.fit_bias else self.w_

    @property
    def intercept_(self):
        self._check_fitted()
        return float(self.w_[-1]) if self.fit_bias else 0.0

    def format_trace(self, precision: int = 3) -> str:
        """The recorded steps as a table: x, w, <w,x>, prediction, label, match and new w."""
        if not self.trace:
            raise RuntimeError("Perceptron: no trace recorded; construct with Perceptron(trace=True)")
        if not self.trace_:
            return "(empty trace: call fit or partial_fit first)"

        def vec(v):
            return "(" + ", ".join(_num(a, precision) for a in v) + ")"

        head = ["epoch", "t", "x" + (" (bias 1 last)" if self.fit_bias else ""), "w",
                "<w,x>", "y_hat", "y", "result", "new w"]
        rows = []
        for r in self.trace_:
            if r.match and r.updated:    # only with zero_is_mistake: right sign, zero margin
                result = "match, score 0: update"
            else:
                result = "match" if r.match else "no match"
            rows.append([str(r.epoch + 1), str(r.step + 1), vec(r.x), vec(r.w),
                         _num(r.score, precision), f"{r.prediction:+d}", f"{r.label:+d}",
                         result, vec(r.new_w)])
        widths = [max(len(h), *(len(row[j]) for row in rows)) for j, h in enumerate(head)]
        line = lambda cells: "  ".join(c.rjust(n) for c, n in zip(cells, widths)).rstrip()
        out = [line(head), line(["-" * n for n in widths])]
        last_epoch = self.trace_[0].epoch
        for r, row in zip(self.trace_, rows):
            if r.epoch != last_epoch:    # blank line between epochs
                out.append("")
                last_epoch = r.epoch
            out.append(line(row))
        return "\n".join(out)

    # ---------------------------------------------------------------- helpers

    def _reset(self):
        self.w_ = None
        self.classes_ = None
        self.n_features_in_ = None
        self.mistakes_ = []
        self.n_iter_ = 0
        self.trace_ = []

    def _n_weights(self):
        return self.n_features_in_ + (1 if self.fit_bias else 0)

    def _augment(self, X):
        # The bias as a constant input feature: x_D = 1, w_D = b.
        if not self.fit_bias:
            return X
        return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])

    def _encode(self, y):
        return np.where(y == self.classes_[1], 1.0, -1.0)

    def _check_fitted(self):
        if self.w_ is None:
            raise RuntimeError("Perceptron: not fitted yet; call fit or partial_fit first")

    def _check_X(self, X, refit=False):
        """X as float64 (N, D); a 1-D x is one example (1, D)."""
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"Perceptron: X must be numeric, got {e}") from None
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2:
            raise ValueError(f"Perceptron: expected X of shape (N, D) or one x (D,), "
                             f"got shape {X.shape}")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"Perceptron: X is empty, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("Perceptron: X contains NaN or infinity")
        if not refit:
            self._check_fitted()
            if X.shape[1] != self.n_features_in_:
                D = self.n_features_in_
                raise ValueError(f"Perceptron(in={D}): expected input (N, {D}), "
                                 f"got {X.shape} ({X.shape[1]} features)")
        return X

    def _check_Xy(self, X, y, refit):
        X = self._check_X(X, refit=refit)
        y = np.asarray(y)
        if y.ndim == 0:
            y = y[None]
        if y.ndim != 1:
            raise ValueError(f"Perceptron: expected labels y of shape (N,), got {y.shape}")
        if len(y) != len(X):
            raise ValueError(f"Perceptron: X has {len(X)} examples but y has {len(y)} labels")
        if y.dtype.kind in "fc" and not np.all(np.isfinite(y)):
            raise ValueError("Perceptron: y contains NaN or infinity")
        return X, y

    @staticmethod
    def _resolve_classes(y, need_two=False):
        """(2,) classes: two distinct labels sorted like sklearn, or [-1, +1] for {-1, +1} labels."""
        seen = np.unique(y)
        if len(seen) == 2:
            return seen
        if len(seen) > 2:
            raise ValueError(f"Perceptron is a binary classifier: expected 2 classes, "
                             f"got {len(seen)}: {_show(seen)}")
        # A single label is fine if it is -1 or +1 (an online start, or one class in a batch);
        # any other lone label leaves its role (-1 or +1) undefined.
        if not need_two and seen.dtype.kind in "iuf" and set(seen.tolist()) <= {-1, 1}:
            return np.array([-1, 1], dtype=seen.dtype)
        raise ValueError(f"Perceptron: labels must be in {{-1, +1}} or take exactly two distinct "
                         f"values, got {_show(seen)}"
                         + ("" if need_two else "; pass classes=[neg, pos] to partial_fit"))

    def _check_known_labels(self, y):
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(f"Perceptron: labels {_show(unknown)} are not among the classes "
                             f"{_show(self.classes_)} seen before")


def _shuffle_rng(seed):
    if seed is not None:
        return np.random.default_rng(seed)
    # The library's one global RNG, so chainrule.manual_seed makes unseeded runs repeatable.
    from chainrule.backend import get_rng
    return get_rng()


def _num(a, precision):
    # Integer-valued floats print as integers so the course's small examples read naturally.
    a = float(a)
    return str(int(a)) if a.is_integer() and abs(a) < 1e15 else f"{a:.{precision}g}"


def _show(values, limit=10):
    vals = [v.item() if hasattr(v, "item") else v for v in values[:limit]]
    return str(vals)[:-1] + (", ...]" if len(values) > limit else "]")
