"""Classification metrics (chainrule.train.metrics), checked against scikit-learn."""
import numpy as np
import pytest
from sklearn import metrics as skm

import chainrule as cr
from chainrule.train.metrics import (accuracy, classification_report, confusion_matrix,
                                     precision_recall_f1, top_k_accuracy, zero_one_loss)


def cases():
    """(y_true, scores, C): random problems, one with a class never predicted and one with a
    class absent from y_true."""
    rng = np.random.default_rng(7)
    out = []
    for n, c in [(50, 2), (200, 5), (31, 10)]:
        y = rng.integers(0, c, n)
        s = rng.standard_normal((n, c)) + 1.5 * np.eye(c)[y]     # better than chance
        out.append((y, s, c))
    y = np.array([0, 1, 2, 2, 1, 0, 3, 3])
    s = np.eye(4)[[0, 1, 1, 1, 1, 0, 3, 0]]                      # class 2 never predicted
    out.append((y, s, 4))
    y = np.array([0, 0, 1, 1, 1])
    s = np.eye(3)[[0, 2, 1, 1, 2]]                               # class 2 absent from y_true
    out.append((y, s, 3))
    return out


@pytest.mark.parametrize("case", range(5))
def test_metrics_match_scikit_learn(case):
    y, s, c = cases()[case]
    pred = s.argmax(axis=1)
    labels = list(range(c))
    assert accuracy(y, s) == pytest.approx(skm.accuracy_score(y, pred))
    assert accuracy(y, pred) == accuracy(y, s)
    assert zero_one_loss(y, s) == pytest.approx(skm.zero_one_loss(y, pred))
    assert zero_one_loss(y, s, normalize=False) == skm.zero_one_loss(y, pred, normalize=False)
    np.testing.assert_array_equal(confusion_matrix(y, s, num_classes=c),
                                  skm.confusion_matrix(y, pred, labels=labels))
    r = precision_recall_f1(y, s, num_classes=c)
    p, rc, f, sup = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(r["precision"], p)
    np.testing.assert_allclose(r["recall"], rc)
    np.testing.assert_allclose(r["f1"], f)
    np.testing.assert_array_equal(r["support"], sup)
    for avg in ("macro", "weighted"):
        p, rc, f, _ = skm.precision_recall_fscore_support(y, pred, labels=labels, average=avg,
                                                          zero_division=0)
        assert r[avg]["precision"] == pytest.approx(p)
        assert r[avg]["recall"] == pytest.approx(rc)
        assert r[avg]["f1"] == pytest.approx(f)
    if c > 2:
        for k in range(1, min(3, c - 1) + 1):
            assert top_k_accuracy(y, s, k) == pytest.approx(
                skm.top_k_accuracy_score(y, s, k=k, labels=labels)), k


def test_top_k_ties_break_like_scikit_learn():
    y = np.array([0, 1, 2, 3, 2])
    s = np.array([[1, 1, 1, 1], [0, 1, 1, 0], [2, 2, 2, 0], [0, 0, 0, 0], [1, 0, 1, 1.0]])
    for k in (1, 2, 3):
        assert top_k_accuracy(y, s, k) == pytest.approx(
            skm.top_k_accuracy_score(y, s, k=k, labels=[0, 1, 2, 3]))
    assert top_k_accuracy(y, s, k=4) == 1.0


def test_metrics_take_tensors_and_column_labels():
    y = cr.tensor(np.array([0, 1, 1, 2]))
    s = cr.tensor(np.eye(3)[[0, 1, 2, 2]].astype(np.float32))
    assert accuracy(y, s) == 0.75
    assert accuracy(np.array([[0], [1]]), np.array([0, 0])) == 0.5
    assert confusion_matrix(y, s).shape == (3, 3)


def test_classification_report_text():
    y, s, c = cases()[1]
    text = classification_report(y, s, class_names=[f"c{i}" for i in range(c)])
    r = precision_recall_f1(y, s)
    lines = text.splitlines()
    assert "precision" in lines[0] and "recall" in lines[0] and "f1-score" in lines[0]
    row = next(l for l in lines if l.strip().startswith("c3 "))
    assert f"{r['precision'][3]:.4f}" in row and f"{r['f1'][3]:.4f}" in row
    assert str(int(r["support"][3])) in row
    assert any(l.strip().startswith("macro avg") and f"{r['macro']['f1']:.4f}" in l for l in lines)
    assert any(l.strip().startswith("accuracy") and f"{r['accuracy']:.4f}" in l for l in lines)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="y_true has 3 entries but y_pred 2"):
        accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=r"scores must be \(N, C\)"):
        top_k_accuracy([0, 1], [0.2, 0.3], k=1)
    with pytest.raises(ValueError, match="labels must be in 0..1"):
        confusion_matrix([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match="class labels"):
        accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        classification_report([0, 1, 2], [0, 1, 2], class_names=["a", "b"])
