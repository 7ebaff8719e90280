"""Multi-layer perceptron builder."""
from .. import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}


def mlp(in_features, hidden=(128,), out_features=10, activation="relu", dropout=0.0):
    """Linear -> activation (-> Dropout) for each hidden size, then a Linear head.

    >>> mlp(64, (128,), 10)       # 64 -> 128 -> 10, ReLU
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"mlp: unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    layers, n = [], in_features
    for h in hidden:
        layers += [nn.Linear(n, h), ACTIVATIONS[activation]()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        n = h
    layers.append(nn.Linear(n, out_features))
    return nn.Sequential(*layers)
