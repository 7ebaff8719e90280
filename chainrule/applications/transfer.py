"""Transfer learning and image embeddings (img2vec): what a trained network is good for beyond its
own task.

A trained network's inner layers turn an image into a feature vector. Those vectors serve to rank
images by similarity, to cluster them, and to train a new classifier with few labels. The course's
four regimes (Donahue et al. 2014, Razavian et al. 2014)::

                         very similar dataset           very different dataset
    very little data     linear classifier on top       linear classifier from an earlier layer
    quite a lot of data  fine-tune a few layers         fine-tune a larger number of layers

>>> feats = extract_features(model, X, layer=None)        # (N, D): the input of the last Linear
>>> idx, sims = nearest_neighbours(feats[:1], feats, k=5)  # the 5 most similar images
>>> clusters = kmeans(feats, k=10, seed=0)
>>> replace_head(model, num_classes=5)                     # a new last Linear, the rest kept
>>> freeze(model, except_=head_name(model))                # only the new head learns
>>> opt = optim.Adam(finetune_param_groups(model, lr=1e-3, pretrained_lr_scale=0.1))
"""
from collections import namedtuple

import numpy as np

from .. import nn
from ..autograd import Tensor, no_grad
from ..data import DataLoader, Dataset
from ..nn.module import Module
from ..train.loop import EVAL_BATCH_SIZE, _model_dtype

__all__ = ["FeatureExtractor", "extract_features", "cosine_similarity", "nearest_neighbours",
           "kmeans", "KMeansResult", "freeze", "unfreeze", "trainable_parameters",
           "parametrized_layers", "freeze_all_but_last", "head_name", "replace_head",
           "finetune_param_groups", "setup_transfer", "LinearProbe", "linear_probe",
           "REGIMES", "suggest_regime", "cluster_purity"]


# -- feature extraction -----------------------------------------------------------------------------

class _Stop(Exception):
    """Raised by the capture hook: the layers after the chosen one need not run."""


def head_name(model):
    """The dotted name of the model's last ``Linear`` layer (its classifier head)."""
    name = None
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear):
            name = n
    if name is None:
        raise ValueError(f"{type(model).__name__} has no Linear layer to serve as its head; "
                         f"name the layer explicitly")
    return name


def _resolve_layer(model, layer):
    """(module name, capture 'input' or 'output') for a layer spec.

    None: the input of the last Linear (the penultimate features). An int: that top-level child
    (negative counts from the end). A string: the output of the module with that dotted name
    ('' is the model itself).
    """
    if layer is None:
        return head_name(model), "input"
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        names = [n for n, _ in model.named_children()]
        if not -len(names) <= layer < len(names):
            raise IndexError(f"FeatureExtractor: layer {layer} is out of range for "
                             f"{type(model).__name__} with {len(names)} top-level layers")
        return names[layer], "output"
    if not isinstance(layer, str):
        raise TypeError(f"FeatureExtractor: layer must be a name such as '6', an int or None, "
                        f"got {type(layer).__name__}")
    if layer == "":
        return "", "output"                      # the whole model's output
    names = [n for n, _ in model.named_modules() if n]
    if layer not in names:
        raise KeyError(f"FeatureExtractor: {type(model).__name__} has no layer {layer!r}; its "
                       f"layers are {names}")
    return layer, "output"


class FeatureExtractor(Module):
    """``model`` cut after one layer: ``FeatureExtractor(model, '9')(x)`` is the output of the
    sub-module named '9' (dotted names, as ``model.named_modules()`` lists them), flattened to
    (N, D). ``layer=None`` takes the input of the last Linear layer (the penultimate features); an
    int picks a top-level child (``-2``: the one before the last); ``''`` the model's own output.

    The layers after the chosen one do not run: a forward hook captures the output and stops the
    pass. Gradients flow as usual (for fine-tuning); ``extract_features`` is the batched,
    gradient-free way to get arrays.

    >>> fx = FeatureExtractor(lenet5(1, 10, 8), layer=None)   # the 84 features before the head
    >>> fx(x).shape                                          # x (N, 1, 8, 8) -> (N, 84)
    """

    def __init__(self, model, layer=None, flatten=True):
        super().__init__()
        self.model = model
        self.layer_name, self.capture = _resolve_layer(model, layer)
        self.flatten = bool(flatten)

    def forward(self, x):
        target = self.model.get_submodule(self.layer_name)
        box = []

        def hook(module, inputs, output):
            box.append(inputs[0] if self.capture == "input" else output)
            raise _Stop

        handle = target.register_forward_hook(hook)
        try:
            self.model(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        if not box:
            raise RuntimeError(f"FeatureExtractor: layer {self.layer_name!r} was not called in "
                               f"{type(self.model).__name__}'s forward pass")
        out = box[0]
        if isinstance(out, (tuple, list)):         # e.g. an LSTM's (output, state)
            out = out[0]
        if not isinstance(out, Tensor):
            out = Tensor(out)
        if self.flatten and out.ndim != 2:
            out = out.reshape(out.shape[0], -1) if out.ndim > 1 else out.reshape(1, -1)
        return out

    def extra_repr(self):
        return f"layer={self.layer_name!r} ({self.capture})"


def _batches(X, batch_size):
    """Input batches as arrays from an array (N, ...), a Dataset or a DataLoader."""
    if isinstance(X, DataLoader):
        for batch in X:
            yield batch[0].data
        return
    if isinstance(X, Dataset):
        X = DataLoader(X, batch_size=batch_size, shuffle=False)
        for batch in X:
            yield batch[0].data
        return
    X = np.asarray(X.data if isinstance(X, Tensor) else X)
    for i in range(0, len(X), batch_size):
        yield X[i:i + batch_size]


def extract_features(model, X, layer=None, batch_size=EVAL_BATCH_SIZE):
    """Feature vectors (N, D) of ``X`` at ``layer`` (see ``FeatureExtractor``), computed in batches,
    in eval mode and without gradients; the model's mode is restored afterwards.

    ``X``: an array (N, ...) (floats are cast to the model's dtype), a Dataset or a DataLoader.
    ``model`` may itself be a ``FeatureExtractor`` (then ``layer`` must be None).

    >>> F = extract_features(model, X_test)          # (360, 84) for lenet5 on digits
    """
    if batch_size < 1:
        raise ValueError(f"extract_features: batch_size must be positive, got {batch_size}")
    if isinstance(model, FeatureExtractor) and layer is None:
        fx = model
    else:
        fx = FeatureExtractor(model, layer)
    dtype = _model_dtype(fx)
    was_training = fx.training
    fx.eval()
    outs = []
    try:
        with no_grad():
            for xb in _batches(X, batch_size):
                if dtype is not None and xb.dtype.kind == "f" and xb.dtype != dtype:
                    xb = xb.astype(dtype)
                outs.append(np.asarray(fx(Tensor(xb)).data))
    finally:
        fx.train(was_training)
    if not outs:
        raise ValueError("extract_features: no inputs (empty X)")
    return np.concatenate(outs)


# -- similarity, neighbours, clusters ---------------------------------------------------------------

def _as_2d(a, where):
    a = np.asarray(a.data if isinstance(a, Tensor) else a, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise ValueError(f"{where}: expected vectors (N, D) or one vector (D,), got shape {a.shape}")
    return a


def cosine_similarity(A, B=None, eps=1e-12):
    """Cosine similarity of every row of ``A`` (N, D) with every row of ``B`` (M, D) (default: A):
    an (N, M) matrix in [-1, 1]. A zero vector has similarity 0 with everything.

    >>> cosine_similarity([1, 0], [[1, 0], [0, 1], [-1, 0]])     # [[1, 0, -1]]
    """
    A = _as_2d(A, "cosine_similarity")
    B = A if B is None else _as_2d(B, "cosine_similarity")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"cosine_similarity: vectors of {A.shape[1]} and {B.shape[1]} dimensions")
    An = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), eps)
    Bn = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), eps)
    return np.clip(An @ Bn.T, -1.0, 1.0)


def nearest_neighbours(query, database, k=5, metric="cosine", exclude=None):
    """The ``k`` rows of ``database`` (M, D) nearest each row of ``query`` (Q, D) (or one (D,)
    vector): ``(indices (Q, k), scores (Q, k))``, best first. ``metric='cosine'`` ranks by cosine
    similarity (scores are similarities, highest first), ``'euclidean'`` by distance (scores are
    distances, lowest first). Ties keep database order. ``exclude``: per query, one database index
    to skip (e.g. the query itself when it is in the database), as an int array (Q,).

    >>> idx, sims = nearest_neighbours(F[:3], F, k=5, exclude=np.arange(3))
    """
    Q = _as_2d(query, "nearest_neighbours")
    D = _as_2d(database, "nearest_neighbours")
    if metric == "cosine":
        s = cosine_similarity(Q, D)
        order_key = -s
    elif metric == "euclidean":
        s = np.sqrt(np.maximum(((Q[:, None, :] - D[None, :, :]) ** 2).sum(-1), 0.0))
        order_key = s
    else:
        raise ValueError(f"nearest_neighbours: metric must be 'cosine' or 'euclidean', got {metric!r}")
    if exclude is not None:
        ex = np.asarray(exclude).reshape(-1)
        if len(ex) != len(Q):
            raise ValueError(f"nearest_neighbours: exclude has {len(ex)} entries for {len(Q)} queries")
        order_key = order_key.copy()
        order_key[np.arange(len(Q)), ex] = np.inf
    available = D.shape[0] - (exclude is not None)
    if not 1 <= k <= available:
        raise ValueError(f"nearest_neighbours: k must be between 1 and {available}, got {k}")
    idx = np.argsort(order_key, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(s, idx, axis=1)


KMeansResult = namedtuple("KMeansResult", "centroids labels inertia n_iter")
KMeansResult.__doc__ = ("k-means result: centroids (k, D), labels (N,), inertia (sum of squared "
                        "distances to the assigned centroid), n_iter (Lloyd iterations of the best run)")


def _sq_dist(X, C):
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2, clipped at 0 against rounding
    return np.maximum((X * X).sum(1)[:, None] - 2.0 * X @ C.T + (C * C).sum(1)[None, :], 0.0)


def _kmeans_pp(X, k, rng):
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre is drawn with probability
    proportional to its squared distance from the nearest centre chosen so far."""
    n = len(X)
    centres = [X[rng.integers(n)]]
    d2 = _sq_dist(X, centres[0][None])[:, 0]
    for _ in range(1, k):
        total = d2.sum()
        i = rng.choice(n, p=d2 / total) if total > 0 else rng.integers(n)
        centres.append(X[i])
        d2 = np.minimum(d2, _sq_dist(X, X[i][None])[:, 0])
    return np.array(centres)


def kmeans(X, k, n_init=1, max_iter=100, tol=1e-6, seed=0):
    """Lloyd's k-means with k-means++ seeding, in NumPy. Runs ``n_init`` seedings and keeps the one
    with the lowest inertia. An emptied cluster is moved to the point farthest from its centre.
    Deterministic for a given ``seed``.

    >>> res = kmeans(features, k=10, seed=0)
    >>> res.labels[:5], res.centroids.shape, res.inertia
    """
    X = _as_2d(X, "kmeans")
    n = len(X)
    if not (isinstance(k, (int, np.integer)) and 1 <= k <= n):
        raise ValueError(f"kmeans: k must be an integer between 1 and the number of points ({n}), "
                         f"got {k}")
    if n_init < 1 or max_iter < 1:
        raise ValueError(f"kmeans: n_init and max_iter must be positive, got {n_init}, {max_iter}")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(n_init):
        C = _kmeans_pp(X, k, rng)
        labels = None
        for it in range(1, max_iter + 1):
            d = _sq_dist(X, C)
            labels = d.argmin(1)
            newC = C.copy()
            for j in range(k):
                members = labels == j
                if members.any():
                    newC[j] = X[members].mean(0)
                else:                                    # reseed an empty cluster
                    far = d[np.arange(n), labels].argmax()
                    newC[j] = X[far]
                    labels[far] = j
            shift = np.abs(newC - C).max()
            C = newC
            if shift <= tol:
                break
        d = _sq_dist(X, C)
        labels = d.argmin(1)
        inertia = float(d[np.arange(n), labels].sum())
        if best is None or inertia < best.inertia:
            best = KMeansResult(C, labels, inertia, it)
    return best


def cluster_purity(labels, classes):
    """The share of points whose cluster's majority class is their own class (1.0: every cluster
    holds one class)."""
    labels, classes = np.asarray(labels), np.asarray(classes)
    if labels.shape != classes.shape:
        raise ValueError(f"cluster_purity: {labels.shape} cluster labels for {classes.shape} classes")
    total = 0
    for c in np.unique(labels):
        _, counts = np.unique(classes[labels == c], return_counts=True)
        total += counts.max()
    return total / max(len(labels), 1)


# -- freezing and heads -----------------------------------------------------------------------------

def _names_and_ids(model, keep, where):
    """Parameter ids under ``keep``: names of sub-modules or parameters, or Module / Parameter
    objects."""
    if keep is None:
        return set()
    if isinstance(keep, (str, Module, Tensor)):
        keep = [keep]
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    ids = set()
    for k in keep:
        if isinstance(k, Module):
            ids |= {id(p) for p in k.parameters()}
        elif isinstance(k, Tensor):
            ids.add(id(k))
        elif isinstance(k, str) and k in modules:
            ids |= {id(p) for p in modules[k].parameters()}
        elif isinstance(k, str) and k in params:
            ids.add(id(params[k]))
        else:
            raise KeyError(f"{where}: {type(model).__name__} has no layer or parameter {k!r}; its "
                           f"layers with parameters are {parametrized_layers(model)}")
    return ids


def freeze(model, except_=None):
    """Stop every parameter of ``model`` from learning (``requires_grad = False``, gradient cleared),
    except those under ``except_``: a layer name (``'11'``, ``'head'``), a parameter name
    (``'11.weight'``), a Module or Parameter, or a list of them. Frozen parameters get no gradient
    (the backward pass skips them), so an optimizer leaves them unchanged. Returns ``model``.

    Modes are untouched: a frozen BatchNorm still updates its running statistics in training mode.

    >>> freeze(model, except_=head_name(model))       # a linear classifier on frozen features
    """
    keep = _names_and_ids(model, except_, "freeze")
    for p in model.parameters():
        p.requires_grad = id(p) in keep
        if not p.requires_grad:
            p.grad = None
    return model


def unfreeze(model, only=None):
    """Let the parameters under ``only`` (as ``freeze``'s ``except_``; default: all) learn again."""
    ids = None if only is None else _names_and_ids(model, only, "unfreeze")
    for p in model.parameters():
        if ids is None or id(p) in ids:
            p.requires_grad = True
    return model


def trainable_parameters(model):
    """The parameters that learn (``requires_grad``), for an optimizer after ``freeze``."""
    return [p for p in model.parameters() if p.requires_grad]


def parametrized_layers(model):
    """Names of the sub-modules that hold parameters themselves, in forward (registration) order:
    ``['0', '3', '7', '9', '11']`` for lenet5."""
    return [n for n, m in model.named_modules()
            if any(p is not None for p in m._parameters.values())]


def freeze_all_but_last(model, n):
    """Freeze everything but the last ``n`` layers with parameters ("fine-tune the last few
    layers"); returns their names."""
    layers = parametrized_layers(model)
    if not 1 <= n <= len(layers):
        raise ValueError(f"freeze_all_but_last: n must be between 1 and {len(layers)} (the layers "
                         f"with parameters: {layers}), got {n}")
    keep = layers[-n:]
    freeze(model, except_=keep)
    return keep


def replace_head(model, num_classes, layer=None):
    """Swap the classifier head (the last Linear, or the Linear named ``layer``) for a fresh
    ``Linear(in_features, num_classes)`` of the same dtype and bias setting, in place; every other
    weight is kept. Returns ``model``.

    >>> replace_head(pretrained, num_classes=5)       # a 10-class digit net -> a 5-class one
    """
    name = head_name(model) if layer is None else layer
    old = model.get_submodule(name)
    if not isinstance(old, nn.Linear):
        raise TypeError(f"replace_head: layer {name!r} is a {type(old).__name__}, not a Linear")
    if not (isinstance(num_classes, (int, np.integer)) and num_classes >= 1):
        raise ValueError(f"replace_head: num_classes must be a positive integer, got {num_classes!r}")
    new = nn.Linear(old.in_features, int(num_classes), bias=old.bias is not None,
                    dtype=old.weight.data.dtype)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    setattr(parent, child, new)
    return model


def finetune_param_groups(model, lr, pretrained_lr_scale=0.1, head=None):
    """Optimizer parameter groups for fine-tuning: the head (default: the last Linear) learns at
    ``lr``, the pretrained rest at ``lr * pretrained_lr_scale``. Frozen parameters are left out.

    >>> opt = optim.Adam(finetune_param_groups(model, lr=1e-3, pretrained_lr_scale=0.1))
    """
    head = head_name(model) if head is None else head
    head_ids = _names_and_ids(model, head, "finetune_param_groups")
    top = [p for p in model.parameters() if p.requires_grad and id(p) in head_ids]
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = []
    if rest:
        groups.append({"params": rest, "lr": lr * pretrained_lr_scale, "name": "pretrained"})
    if top:
        groups.append({"params": top, "lr": lr, "name": "head"})
    if not groups:
        raise ValueError("finetune_param_groups: every parameter is frozen")
    return groups


REGIMES = {
    ("little", "similar"): "linear",
    ("little", "different"): "linear-earlier",
    ("lots", "similar"): "last",
    ("lots", "different"): "all",
}


def suggest_regime(little_data, similar):
    """The course's table: 'linear' (linear classifier on the top layer), 'linear-earlier' (you're in
    trouble: try linear classifiers on earlier stages), 'last' (fine-tune a few layers) or 'all'
    (fine-tune a larger number of layers)."""
    return REGIMES[("little" if little_data else "lots", "similar" if similar else "different")]


def setup_transfer(model, num_classes, regime, lr=1e-3, optimizer="adam", last_n=2,
                   pretrained_lr_scale=0.1, weight_decay=0.0):
    """Prepare a pretrained ``model`` for a new task in one call: a new head for ``num_classes``,
    then, per ``regime``:

    - ``'linear'``: everything frozen but the head (a linear classifier on frozen features);
    - ``'last'``: the last ``last_n`` layers with parameters learn (the head included), at ``lr``;
    - ``'all'``: everything learns, the pretrained part at ``lr * pretrained_lr_scale``.

    ``optimizer``: 'adam' or 'sgd' (momentum 0.9). Returns ``(model, optimizer)``.
    """
    from .. import optim
    if regime not in ("linear", "last", "all"):
        raise ValueError(f"setup_transfer: regime must be 'linear', 'last' or 'all', got {regime!r}")
    replace_head(model, num_classes)
    head = head_name(model)
    if regime == "linear":
        freeze(model, except_=head)
        groups = [{"params": trainable_parameters(model), "lr": lr}]
    elif regime == "last":
        freeze_all_but_last(model, last_n)
        groups = [{"params": trainable_parameters(model), "lr": lr}]
    else:
        unfreeze(model)
        groups = finetune_param_groups(model, lr, pretrained_lr_scale, head)
    if optimizer == "adam":
        opt = optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        raise ValueError(f"setup_transfer: optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    return model, opt


# -- a linear classifier on frozen features ---------------------------------------------------------

class LinearProbe(Module):
    """A linear classifier on a frozen network's features: ``head((features(x) - mean) / std)``.
    The feature extractor's parameters are frozen; only ``head`` learns. Build with
    ``linear_probe``."""

    def __init__(self, extractor, num_classes, mean, std):
        super().__init__()
        self.features = extractor
        freeze(self.features)
        dtype = _model_dtype(extractor) or np.float32
        self.register_buffer("mean", Tensor(np.asarray(mean, dtype=dtype)))
        self.register_buffer("std", Tensor(np.asarray(std, dtype=dtype)))
        self.head = nn.Linear(len(mean), num_classes, dtype=dtype)

    def classify(self, features):
        """Scores (N, C) for precomputed (unnormalised) features (N, D)."""
        f = features if isinstance(features, Tensor) else Tensor(np.asarray(features))
        return self.head((f - self.mean) / self.std)

    def forward(self, x):
        return self.classify(self.features(x))


def linear_probe(model, X, y, num_classes=None, layer=None, epochs=100, lr=0.01,
                 weight_decay=1e-3, batch_size=64, seed=0, val_data=None, progress=False):
    """Train a linear (softmax) classifier on ``model``'s frozen features at ``layer`` (default: the
    penultimate features): the features are extracted once, standardised with the training
    statistics, and a Linear layer is fitted with Adam. Returns a ``LinearProbe`` module that
    classifies images directly (``probe(x)`` -> scores, ``predict(probe, X)``). The probe shares
    ``model`` and freezes its parameters (load a copy first to fine-tune it later).

    >>> probe = linear_probe(pretrained, X_few, y_few, num_classes=5)
    >>> (predict(probe, X_test).argmax(1) == y_test).mean()
    """
    from .. import backend, optim
    from ..train import Trainer
    y = np.asarray(y, dtype=np.int64)
    num_classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
    extractor = FeatureExtractor(model, layer)
    F = extract_features(extractor, X)
    mean, std = F.mean(0), F.std(0) + 1e-3
    state = backend.get_rng_state()
    backend.manual_seed(seed)
    try:
        probe = LinearProbe(extractor, num_classes, mean, std)
    finally:
        backend.set_rng_state(state)
    head_only = _HeadOnly(probe)
    opt = optim.Adam(probe.head.parameters(), lr=lr, weight_decay=weight_decay)
    val = None
    if val_data is not None:
        val = (extract_features(extractor, val_data[0]), np.asarray(val_data[1]))
    Trainer(head_only, opt).fit((F.astype(mean.dtype), y), epochs=epochs, batch_size=batch_size,
                                seed=seed, val_data=val, progress=progress)
    return probe


class _HeadOnly(Module):
    """The probe's head over precomputed features (what the Trainer fits)."""

    def __init__(self, probe):
        super().__init__()
        self.__dict__["probe"] = probe           # not registered: only the head's parameters
        self.head = probe.head

    def forward(self, f):
        return self.probe.classify(f)
