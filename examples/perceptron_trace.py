"""Rosenblatt's perceptron, step by step, on the course's small 2-D example.

    w(0) = 0;  y_hat = sign(<w, x>) with sign(0) = +1;  w <- w + y x when y != y_hat

Run:  python examples/perceptron_trace.py
"""
import numpy as np

from chainrule.models.perceptron import Perceptron

# The course's observations: the very first one, (-1, 1) with label -1, meets w = (0, 0),
# scores 0, is predicted +1 (sign(0) = +1): "no match", so w becomes (0, 0) - (-1, 1) = (1, -1).
X = np.array([[-1, 1], [1, 1], [-1, -1], [1, -1]], dtype=float)
y = np.array([-1, 1, -1, 1])


def show(title, clf):
    print(f"== {title}")
    print(clf.format_trace())
    print(f"mistakes per epoch: {clf.mistakes_}   epochs run: {clf.n_iter_}")
    print(f"final w = {clf.w_}   training accuracy = {clf.score(X, y):.2f}\n")


# 1. Exactly as on the slides: no bias, sign(0) = +1, stop after the first clean epoch.
show("course rule, no bias", Perceptron(fit_bias=False, trace=True).fit(X, y, epochs=10))

# 2. Same data with the bias as a constant input feature x_3 = 1 (its weight is the bias b).
show("course rule, bias as a constant feature",
     Perceptron(fit_bias=True, trace=True).fit(X, y, epochs=10))

# 3. scikit-learn's variant: a zero score is always a mistake (update when y <w, x> <= 0),
#    so step 2 updates even though sign(0) = +1 already matches the label.
show("zero_is_mistake=True (scikit-learn's rule)",
     Perceptron(fit_bias=False, zero_is_mistake=True, trace=True).fit(X, y, epochs=10))

# 4. Online: the same rule one example at a time, continuing from the current weights.
online = Perceptron(fit_bias=False)
for x_t, y_t in zip(X, y):
    online.partial_fit(x_t, y_t)
    print(f"after x={x_t}, y={y_t:+d}:  w = {online.w_}")
print(f"predict((0.5, 3)) = {online.predict([0.5, 3.0]):+d}")

# 5. XOR is not linearly separable (Minsky & Papert, 1969): some epoch always has a mistake.
X_xor = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
xor = Perceptron(fit_bias=True).fit(X_xor, [0, 1, 1, 0], epochs=8)
print(f"\nXOR mistakes per epoch: {xor.mistakes_}   (never 0: no line separates XOR)")
