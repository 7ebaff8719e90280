"""The world's smallest perceptron: y = w x, fitted by gradient descent with autograd.

Data from the course: (10, 10.1), (2, 1.9), (3.5, 3.4), (1, 1.1). The loss is the course's
L = 1/2 (y - y_hat)^2, averaged; its minimiser is the least-squares slope
w* = sum(x y) / sum(x^2) = 117.8 / 117.25 = 1.00469...

    python examples/smallest_perceptron.py
"""
import chainrule as cr
from chainrule.nn import functional as F

X = [10.0, 2.0, 3.5, 1.0]
Y = [10.1, 1.9, 3.4, 1.1]


def fit(lr=0.02, steps=200, verbose=True):
    x = cr.tensor(X, dtype="float64")
    y = cr.tensor(Y, dtype="float64")
    w = cr.tensor(0.0, dtype="float64", requires_grad=True)
    for step in range(steps):
        y_hat = w * x                                   # forward: the perceptron
        loss = F.l2_loss(y_hat, y, half=True)           # L = mean of 1/2 (y_hat - y)^2
        w.grad = None
        loss.backward()                                 # dL/dw = mean((y_hat - y) x)
        if verbose and (step < 5 or step % 40 == 0):
            print(f"step {step:3d}  w = {w.item():.6f}  loss = {loss.item():.6f}  dL/dw = {w.grad.item():+.6f}")
        with cr.no_grad():
            w.data -= lr * w.grad.data                  # w <- w - lr dL/dw
    return w.item()


def main():
    w = fit()
    exact = sum(a * b for a, b in zip(X, Y)) / sum(a * a for a in X)
    print(f"gradient descent: w = {w:.6f}; least squares: w* = 117.8 / 117.25 = {exact:.6f}")
    return w


if __name__ == "__main__":
    main()
