"""Tests for chainrule.models.perceptron: the course's rule, sklearn parity, online use, errors."""
import numpy as np
import pytest

from chainrule.models.perceptron import Perceptron, TraceStep

# The course's 2-D example: the first step scores 0 with label -1 ("no match"),
# the second scores 0 with label +1 ("match", because sign(0) = +1).
COURSE_X = np.array([[-1, 1], [1, 1], [-1, -1], [1, -1]], dtype=float)
COURSE_Y = np.array([-1, 1, -1, 1])


# ----------------------------------------------------------------- datasets

def separable(seed, n=60, d=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w, b = rng.normal(size=d), 0.3
    return X, np.where(X @ w + b >= 0, 1, -1)


def non_separable(seed, n=80, d=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, d)) + 0.5 * y[:, None]        # overlapping blobs
    return X, y


def binary_integers(seed, n=50, d=8):
    # Integer inputs make exact zero scores common, which is where the two rules differ.
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(n, d)).astype(float)
    y = np.where(X[:, 0] + X[:, 1] - X[:, 2] + rng.integers(-1, 2, size=n) > 0, 1, -1)
    return X, y


def margin_data(seed, n=200, d=2, gamma=0.1):
    """Separable data with a known unit separator u (bias last) and margin >= gamma."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d + 1)
    u /= np.linalg.norm(u)
    X = rng.uniform(-1, 1, size=(4 * n, d))
    s = np.hstack([X, np.ones((len(X), 1))]) @ u
    keep = np.abs(s) >= gamma
    return X[keep][:n], np.where(s[keep][:n] > 0, 1, -1), u


def sklearn_perceptron(epochs, **kw):
    sklm = pytest.importorskip("sklearn.linear_model")
    # tol=None: sklearn runs all max_iter epochs, never stopping early.
    return sklm.Perceptron(shuffle=False, eta0=kw.pop("eta0", 1.0), alpha=0.0, tol=None,
                           max_iter=epochs, **kw)


# ----------------------------------------------------------- sklearn parity

@pytest.mark.parametrize("make, seed, epochs", [
    (separable, 0, 10), (separable, 1, 3),
    (non_separable, 2, 7), (non_separable, 3, 1),
    (binary_integers, 4, 5), (binary_integers, 5, 12),
])
def test_matches_sklearn_weights_with_zero_is_mistake(make, seed, epochs):
    X, y = make(seed)
    sk = sklearn_perceptron(epochs).fit(X, y)
    ours = Perceptron(zero_is_mistake=True, stop_when_separated=False).fit(X, y, epochs=epochs)
    assert ours.n_iter_ == epochs == sk.n_iter_
    # Same updates in the same order on the same float64 values: equal bit for bit.
    assert np.array_equal(ours.coef_, sk.coef_.ravel())
    assert ours.intercept_ == sk.intercept_[0]
    assert np.array_equal(ours.classes_, sk.classes_)
    s = ours.decision_function(X)
    np.testing.assert_allclose(s, sk.decision_function(X), rtol=1e-12, atol=1e-12)
    off_boundary = s != 0            # sklearn predicts the negative class at score 0
    assert np.array_equal(ours.predict(X)[off_boundary], sk.predict(X)[off_boundary])


@pytest.mark.parametrize("make, seed", [(separable, 6), (binary_integers, 7)])
def test_matches_sklearn_without_bias_and_with_other_lr(make, seed):
    X, y = make(seed)
    sk = sklearn_perceptron(6, fit_intercept=False).fit(X, y)
    ours = Perceptron(fit_bias=False, zero_is_mistake=True,
                      stop_when_separated=False).fit(X, y, epochs=6)
    assert np.array_equal(ours.coef_, sk.coef_.ravel())
    assert ours.intercept_ == 0.0 and ours.w_.shape == (X.shape[1],)

    sk = sklearn_perceptron(6, eta0=0.5).fit(X, y)
    ours = Perceptron(lr=0.5, zero_is_mistake=True, stop_when_separated=False).fit(X, y, epochs=6)
    assert np.array_equal(ours.coef_, sk.coef_.ravel())
    assert ours.intercept_ == sk.intercept_[0]


def test_matches_sklearn_with_string_labels():
    X, y = non_separable(8)
    labels = np.array(["cat", "dog"])[y]
    sk = sklearn_perceptron(4).fit(X, labels)
    ours = Perceptron(zero_is_mistake=True, stop_when_separated=False).fit(X, labels, epochs=4)
    assert np.array_equal(ours.coef_, sk.coef_.ravel())
    assert ours.intercept_ == sk.intercept_[0]
    assert list(ours.classes_) == ["cat", "dog"]


# ---------------------------------------------------------- the course's rule

def test_sign_of_zero_is_plus_one():
    x = np.array([1.0, 2.0])
    # Zero score, label +1: sign(0) = +1 is correct, so no update.
    clf = Perceptron(fit_bias=False).partial_fit(x, 1)
    assert clf.mistakes_ == [0] and np.array_equal(clf.w_, [0.0, 0.0])
    assert clf.predict(x) == 1 and clf.decision_function(x) == 0.0
    # Zero score, label -1: a mistake, w <- w + y x.
    clf = Perceptron(fit_bias=False).partial_fit(x, -1)
    assert clf.mistakes_ == [1] and np.array_equal(clf.w_, -x)
    # The sklearn-style rule updates on any zero margin.
    clf = Perceptron(fit_bias=False, zero_is_mistake=True).partial_fit(x, 1)
    assert clf.mistakes_ == [1] and np.array_equal(clf.w_, x)


def test_course_rule_differs_from_zero_is_mistake_on_ties():
    X, y = binary_integers(9)
    a = Perceptron(stop_when_separated=False).fit(X, y, epochs=5)
    b = Perceptron(zero_is_mistake=True, stop_when_separated=False).fit(X, y, epochs=5)
    assert not np.array_equal(a.w_, b.w_)


def test_predict_maps_zero_score_to_positive_class():
    clf = Perceptron().fit([[0.0], [1.0]], [3, 7])
    clf.w_[:] = 0.0                  # every score is now exactly 0
    assert np.array_equal(clf.predict([[5.0], [-5.0]]), [7, 7])


def test_weights_start_at_zero_and_fit_restarts():
    X, y = separable(10)
    clf = Perceptron(trace=True).fit(X, y, epochs=3)
    assert np.array_equal(clf.trace_[0].w, np.zeros(X.shape[1] + 1))
    first = clf.w_.copy()
    clf.fit(X, y, epochs=3)          # fit starts again from w = 0, it does not continue
    assert np.array_equal(clf.w_, first)
    assert np.array_equal(clf.trace_[0].w, np.zeros(X.shape[1] + 1))
    assert len(clf.trace_) == sum(1 for _ in range(clf.n_iter_) for _ in y)


def test_update_rule_by_hand():
    """Replays w <- w + lr y x on every mistake of the trace."""
    X, y = non_separable(11)
    clf = Perceptron(lr=0.25, trace=True, stop_when_separated=False).fit(X, y, epochs=3)
    w = np.zeros(X.shape[1] + 1)
    for r in clf.trace_:
        xa = np.append(X[r.step], 1.0)
        assert np.array_equal(r.x, xa) and np.array_equal(r.w, w)
        assert r.score == pytest.approx(w @ xa)
        pred = 1 if w @ xa >= 0 else -1
        assert r.prediction == pred and r.match == (pred == r.label)
        if pred != r.label:
            w = w + 0.25 * r.label * xa
        assert np.array_equal(r.new_w, w)
    assert np.array_equal(clf.w_, w)


def test_lr_only_rescales_weights():
    X, y = non_separable(12)
    a = Perceptron(stop_when_separated=False).fit(X, y, epochs=4)
    b = Perceptron(lr=0.5, stop_when_separated=False).fit(X, y, epochs=4)
    # 0.5 is a power of two, so the scaling is exact.
    assert np.array_equal(b.w_, 0.5 * a.w_) and a.mistakes_ == b.mistakes_


# ------------------------------------------------------------ online training

@pytest.mark.parametrize("zero_is_mistake", [False, True])
@pytest.mark.parametrize("fit_bias", [False, True])
def test_partial_fit_one_at_a_time_equals_one_epoch(zero_is_mistake, fit_bias):
    X, y = non_separable(13)
    full = Perceptron(fit_bias=fit_bias, zero_is_mistake=zero_is_mistake,
                      trace=True).fit(X, y, epochs=1)
    online = Perceptron(fit_bias=fit_bias, zero_is_mistake=zero_is_mistake, trace=True)
    for x_t, y_t in zip(X, y):
        online.partial_fit(x_t, y_t, classes=[0, 1])      # a 1-D x and a scalar label
    assert np.array_equal(online.w_, full.w_)
    assert sum(online.mistakes_) == full.mistakes_[0] and len(online.mistakes_) == len(y)
    assert [r.updated for r in online.trace_] == [r.updated for r in full.trace_]


def test_partial_fit_batches_continue_like_fit_epochs():
    X, y = binary_integers(14)
    full = Perceptron(stop_when_separated=False).fit(X, y, epochs=4)
    online = Perceptron()
    for _ in range(4):
        online.partial_fit(X, y)
    assert np.array_equal(online.w_, full.w_) and online.mistakes_ == full.mistakes_


def test_partial_fit_classes():
    # Labels in {-1, +1} need no classes=, even when the first call sees only one of them.
    clf = Perceptron().partial_fit([1.0, 0.0], -1)
    assert np.array_equal(clf.classes_, [-1, 1])
    clf.partial_fit([[0.0, 1.0]], [1])
    assert clf.predict([0.0, 1.0]) == 1
    # A lone 0 label is ambiguous: is it the -1 or the +1 class?
    with pytest.raises(ValueError, match=r"Perceptron.*\[0\].*classes="):
        Perceptron().partial_fit([1.0, 0.0], 0)
    clf = Perceptron().partial_fit([1.0, 0.0], 0, classes=[0, 1])
    with pytest.raises(ValueError, match=r"Perceptron: labels \[2\] are not among"):
        clf.partial_fit([1.0, 0.0], 2)


def test_shuffle_is_seeded_and_uses_fresh_order_each_epoch():
    X, y = non_separable(15)
    a = Perceptron(stop_when_separated=False).fit(X, y, epochs=3, shuffle=True, seed=42)
    b = Perceptron(stop_when_separated=False).fit(X, y, epochs=3, shuffle=True, seed=42)
    assert np.array_equal(a.w_, b.w_)
    rng, manual = np.random.default_rng(42), Perceptron()
    for _ in range(3):
        order = rng.permutation(len(y))
        manual.partial_fit(X[order], y[order])
    assert np.array_equal(manual.w_, a.w_)
    plain = Perceptron(stop_when_separated=False).fit(X, y, epochs=3)
    assert not np.array_equal(plain.w_, a.w_)


def test_unseeded_shuffle_follows_manual_seed():
    backend = pytest.importorskip("chainrule.backend")
    X, y = non_separable(22)
    runs = []
    for _ in range(2):
        backend.manual_seed(123)
        runs.append(Perceptron(stop_when_separated=False).fit(X, y, epochs=3, shuffle=True).w_)
    assert np.array_equal(runs[0], runs[1])


# --------------------------------------------------------------- convergence

@pytest.mark.parametrize("zero_is_mistake", [False, True])
@pytest.mark.parametrize("seed", [16, 17, 18])
def test_converges_within_novikoff_bound_on_separable_data(seed, zero_is_mistake):
    X, y, u = margin_data(seed)
    Xa = np.hstack([X, np.ones((len(X), 1))])
    gamma = np.min(y * (Xa @ u))
    R = np.max(np.linalg.norm(Xa, axis=1))
    clf = Perceptron(zero_is_mistake=zero_is_mistake).fit(X, y, epochs=1000)
    assert clf.mistakes_[-1] == 0 and clf.n_iter_ < 1000
    assert len(clf.mistakes_) == clf.n_iter_
    # Every mistake has y <w, x> <= 0, so Novikoff's bound holds for both rules.
    assert sum(clf.mistakes_) <= (R / gamma) ** 2
    assert clf.score(X, y) == 1.0


def test_stop_when_separated_false_runs_all_epochs():
    X, y, _ = margin_data(19)
    clf = Perceptron(stop_when_separated=False).fit(X, y, epochs=50)
    assert clf.n_iter_ == len(clf.mistakes_) == 50
    first_clean = clf.mistakes_.index(0)
    assert all(m == 0 for m in clf.mistakes_[first_clean:])   # once separated, w stays put


def test_score_is_accuracy():
    X, y = non_separable(20)
    clf = Perceptron().fit(X, y, epochs=5)
    assert clf.score(X, y) == pytest.approx(np.mean(clf.predict(X) == y))


# ---------------------------------------------------------------------- labels

def test_two_labels_map_smaller_to_minus_one_and_predict_originals():
    X, y = separable(21)
    for labels in ([0, 1], [3, 7], [-2.5, 4.0], ["no", "yes"]):
        yy = np.asarray(labels)[(y + 1) // 2]
        clf = Perceptron().fit(X, yy, epochs=20)
        ref = Perceptron().fit(X, y, epochs=20)
        assert np.array_equal(clf.classes_, labels)
        assert np.array_equal(clf.w_, ref.w_)
        assert np.array_equal(clf.predict(X), np.asarray(labels)[(ref.predict(X) + 1) // 2])
    # A batch with only +1 labels is fine: the classes are {-1, +1}.
    assert np.array_equal(Perceptron().fit(X, np.ones(len(X))).classes_, [-1, 1])


def test_single_example_outputs_are_scalars():
    clf = Perceptron().fit(COURSE_X, COURSE_Y)
    assert isinstance(clf.decision_function([1.0, 0.0]), float)
    assert np.ndim(clf.predict([1.0, 0.0])) == 0
    assert clf.predict(COURSE_X).shape == (4,)


# ------------------------------------------------------------------- the trace

def test_trace_of_course_example():
    clf = Perceptron(fit_bias=False, trace=True).fit(COURSE_X, COURSE_Y, epochs=10)
    assert all(isinstance(r, TraceStep) for r in clf.trace_)
    first = [(r.score, r.prediction, r.label, r.match, tuple(r.new_w)) for r in clf.trace_[:4]]
    assert first == [
        (0.0, 1, -1, False, (1.0, -1.0)),     # sign(0) = +1, label -1: no match, update
        (0.0, 1, 1, True, (1.0, -1.0)),       # sign(0) = +1, label +1: match
        (0.0, 1, -1, False, (2.0, 0.0)),
        (2.0, 1, 1, True, (2.0, 0.0)),
    ]
    assert clf.mistakes_ == [2, 0] and clf.n_iter_ == 2 and len(clf.trace_) == 8
    table = clf.format_trace()
    lines = table.splitlines()
    assert "result" in lines[0] and "new w" in lines[0]
    assert "no match" in lines[2] and "(1, -1)" in lines[2]
    assert lines[3].split()[-3] == "match"
    assert len(lines) == 2 + 8 + 1            # header, rule, 8 steps, blank line between epochs


def test_trace_flags_zero_margin_update_and_needs_trace_on():
    clf = Perceptron(fit_bias=False, zero_is_mistake=True, trace=True)
    clf.partial_fit([1.0, 2.0], 1)
    r = clf.trace_[0]
    assert r.match and r.updated
    assert "score 0: update" in clf.format_trace()
    assert Perceptron(trace=True).format_trace().startswith("(empty trace")
    with pytest.raises(RuntimeError, match="Perceptron.*trace=True"):
        Perceptron().fit(COURSE_X, COURSE_Y).format_trace()
    assert Perceptron().fit(COURSE_X, COURSE_Y).trace_ == []


# ---------------------------------------------------------------------- errors

def test_wrong_feature_count_names_expected_and_got():
    clf = Perceptron().fit(np.zeros((4, 3)) + np.arange(3), [0, 1, 0, 1])
    for method in (clf.predict, clf.decision_function):
        with pytest.raises(ValueError, match=r"Perceptron\(in=3\): expected input \(N, 3\), "
                                             r"got \(5, 4\)"):
            method(np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"Perceptron\(in=3\).*got \(1, 2\)"):
        clf.partial_fit([1.0, 2.0], 1)
    with pytest.raises(ValueError, match=r"Perceptron\(in=3\)"):
        clf.score(np.zeros((2, 4)), [0, 1])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input(bad):
    X = np.ones((3, 2))
    X[1, 0] = bad
    with pytest.raises(ValueError, match="Perceptron: X contains NaN"):
        Perceptron().fit(X, [1, -1, 1])
    with pytest.raises(ValueError, match="Perceptron: X contains NaN"):
        Perceptron().partial_fit(X, [1, -1, 1])
    clf = Perceptron().fit(np.ones((3, 2)), [1, -1, 1])
    with pytest.raises(ValueError, match="Perceptron: X contains NaN"):
        clf.predict(X)
    with pytest.raises(ValueError, match="Perceptron: y contains NaN"):
        Perceptron().fit(np.ones((3, 2)), [1.0, np.nan, -1.0])


def test_more_than_two_classes():
    with pytest.raises(ValueError, match=r"Perceptron is a binary classifier.*got 3: \[0, 1, 2\]"):
        Perceptron().fit(np.zeros((3, 2)), [0, 1, 2])
    with pytest.raises(ValueError, match="Perceptron.*binary"):
        Perceptron().partial_fit(np.zeros((3, 2)), [0, 1, 2])


def test_single_label_not_plus_minus_one():
    with pytest.raises(ValueError, match=r"Perceptron: labels must be in \{-1, \+1\}.*\[0\]"):
        Perceptron().fit(np.zeros((3, 2)), [0, 0, 0])


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="Perceptron: X has 3 examples but y has 2 labels"):
        Perceptron().fit(np.zeros((3, 2)), [1, -1])
    clf = Perceptron().fit(COURSE_X, COURSE_Y)
    with pytest.raises(ValueError, match="Perceptron: X has 4 examples but y has 3 labels"):
        clf.score(COURSE_X, COURSE_Y[:3])


def test_other_bad_input():
    with pytest.raises(ValueError, match="Perceptron: X must be numeric"):
        Perceptron().fit([["a", "b"]], [1])
    with pytest.raises(ValueError, match=r"Perceptron: expected X of shape \(N, D\)"):
        Perceptron().fit(np.zeros((2, 2, 2)), [1, -1])
    with pytest.raises(ValueError, match="Perceptron: X is empty"):
        Perceptron().fit(np.zeros((0, 2)), [])
    with pytest.raises(ValueError, match=r"Perceptron: expected labels y of shape \(N,\)"):
        Perceptron().fit(np.zeros((2, 2)), [[1], [-1]])
    with pytest.raises(ValueError, match="Perceptron: lr must be a positive"):
        Perceptron(lr=0)
    with pytest.raises(ValueError, match="Perceptron.fit: epochs must be >= 1"):
        Perceptron().fit(COURSE_X, COURSE_Y, epochs=0)
    with pytest.raises(RuntimeError, match="Perceptron: not fitted"):
        Perceptron().predict(COURSE_X)
    with pytest.raises(RuntimeError, match="Perceptron: not fitted"):
        Perceptron().coef_
