"""Models from settings: the one place a model is built from a name and its options, as the
``config`` dict a checkpoint stores ({"kind": ..., **the constructor's arguments}), and rebuilt
from that dict or from a checkpoint.

    >>> from chainrule.train.recipes import train_settings
    >>> config = model_config(train_settings(), in_features=64, n_classes=10)
    >>> model = build_model(config)          # the MLP of `chainrule train`

``settings`` are those of ``chainrule.train.recipes.train_settings`` (model, hidden, channels,
batch_norm, activation, dropout).
"""
import numpy as np

# settings' model name -> constructor in chainrule.models (the checkpoint config's "kind")
CONV_MODELS = {"lenet": "lenet5", "alexnet": "alexnet_small", "vgg": "vgg_small"}
MODELS = ("mlp",) + tuple(CONV_MODELS)
# The architectures' own convolution widths, used when the settings give none.
CONV_CHANNELS = {"lenet": [6, 16], "alexnet": [32], "vgg": [32, 32, "M", 64, 64, "M"]}


def is_conv(model):
    """Whether the settings' model name is a ConvNet (it takes images, not flat features)."""
    return model in CONV_MODELS


def parse_channels(text):
    """'32,64' -> [32, 64]; 'M' (VGG's max pool) kept: '32,32,M,64' -> [32, 32, 'M', 64]."""
    out = []
    for s in str(text).split(","):
        s = s.strip()
        if not s:               # '32,,64' is a typo, not one convolution less
            raise ValueError(f"--channels has an empty size in {text!r}; give sizes like 32,64 "
                             f"(VGG: 32,32,M,64,64,M)")
        if s.upper() == "M":
            out.append("M")
            continue
        try:
            v = int(s)
        except ValueError:
            raise ValueError(f"--channels expects sizes like 32,64 (VGG: 32,32,M,64,64,M), "
                             f"got {text!r}") from None
        if v <= 0:
            raise ValueError(f"--channels sizes must be positive, got {text!r}")
        out.append(v)
    if not out:
        raise ValueError(f"--channels: no sizes in {text!r}")
    return out


def model_config(settings, in_features, n_classes, image_shape=None):
    """The settings that rebuild the model (stored in checkpoints as 'config'); ConvNets need
    ``image_shape`` (C, H, W) and store their constructor's name and keyword arguments."""
    if is_conv(settings["model"]):
        return conv_config(settings, image_shape, n_classes)
    if settings.get("channels") or settings.get("batch_norm"):
        raise ValueError("--channels and --batch-norm are ConvNet options (--model lenet, alexnet "
                         "or vgg)")
    return {"kind": "mlp", "in_features": int(in_features),
            "hidden": [int(h) for h in settings["hidden"]], "out_features": int(n_classes),
            "activation": settings["activation"], "dropout": float(settings["dropout"])}


def conv_config(settings, image_shape, n_classes):
    """The ``model_config`` of a ConvNet: {"kind": constructor name, **its keyword arguments}."""
    name = settings["model"]
    if not image_shape:
        raise ValueError(f"--model {name} needs images: --dataset digits, mnist, "
                         f"fashion-mnist, cifar10 or a folder of images (got "
                         f"{settings.get('dataset')!r})")
    c, h, w = (int(n) for n in image_shape)
    if h != w:
        raise ValueError(f"--model {name} takes square images, got {h}x{w}")
    base = {"kind": CONV_MODELS[name], "in_channels": c, "num_classes": int(n_classes),
            "input_size": h}
    ch = settings.get("channels") or CONV_CHANNELS[name]
    hidden = [int(v) for v in settings["hidden"]]
    batch_norm = settings.get("batch_norm")
    if name == "lenet":
        if len(ch) != 2 or "M" in ch:
            raise ValueError(f"--model lenet: --channels takes the two convolutions' widths "
                             f"(e.g. 32,64), got {','.join(map(str, ch))}")
        return {**base, "channels": list(ch), "hidden": hidden, "batch_norm": bool(batch_norm)}
    if name == "alexnet":
        if batch_norm:
            raise ValueError("--model alexnet uses local response normalisation, not batch norm; "
                             "drop --batch-norm (or use --model vgg or lenet)")
        if len(ch) != 1 or "M" in ch:
            raise ValueError(f"--model alexnet: --channels takes one width (the first "
                             f"convolution's; the others are 2x, 3x, 3x, 2x), got "
                             f"{','.join(map(str, ch))}")
        return {**base, "width": ch[0], "dropout": float(settings["dropout"])}
    if len(hidden) != 1:
        raise ValueError(f"--model vgg has one hidden fully connected layer; give one size with "
                         f"--hidden, got {','.join(map(str, hidden))}")
    return {**base, "config": list(ch), "batch_norm": bool(batch_norm), "hidden": hidden[0],
            "dropout": float(settings["dropout"])}


def build_model(config):
    """The model for a ``model_config`` dict (the one place models are built from settings)."""
    from . import convnets, mlp
    kind = config.get("kind", "mlp")
    if kind == "mlp":
        return mlp(int(config["in_features"]), tuple(int(h) for h in config["hidden"]),
                   int(config["out_features"]), config.get("activation", "relu"),
                   float(config.get("dropout", 0.0)))
    if kind in CONV_MODELS.values():
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k != "kind"}
        return getattr(convnets, kind)(**kw)
    raise ValueError(f"unknown model kind {kind!r} in the checkpoint's config")


def model_input_shape(config):
    """The shape of one input example, without the batch dimension."""
    if config.get("kind", "mlp") in CONV_MODELS.values():
        s = int(config["input_size"])
        return (int(config["in_channels"]), s, s)
    return (int(config["in_features"]),)


def load_model(path):
    """(checkpoint state, model in eval mode) from a checkpoint that stores a ``model_config``
    ('chainrule train --out / --save')."""
    from ..train.checkpoint import check_model_state, load_checkpoint
    state = load_checkpoint(path)
    config = state.get("config")
    if not isinstance(config, dict) or "kind" not in config:
        raise ValueError(f"{path!r} has no model config (written by hand?); cannot rebuild the model")
    model = build_model(config)
    check_model_state(model, state["model"], path)
    model.load_state_dict(state["model"])
    model.eval()
    return state, model


def model_inputs(X, state):
    """Inputs as the checkpoint's model was trained on them: flattened and standardised for an
    MLP; images (N, C, H, W) minus the training split's per-channel mean for a ConvNet."""
    from ..data.prepare import subtract_mean
    config = state.get("config") or {}
    if config.get("kind", "mlp") != "mlp":
        shape = model_input_shape(config)
        if int(np.prod(X.shape[1:])) != int(np.prod(shape)):
            raise ValueError(f"the data has {int(np.prod(X.shape[1:]))} values per example "
                             f"(shape {tuple(X.shape[1:])}); the model takes images "
                             f"{'x'.join(map(str, shape))}")
        ms = state.get("mean_subtraction")
        return subtract_mean(X, ms["mean"] if ms else None, shape)
    st = state.get("standardize")
    X = X.reshape(len(X), -1).astype(np.float32)
    if st is not None:
        X = ((X - st["mean"]) / st["std"]).astype(np.float32)
    return X
