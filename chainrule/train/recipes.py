"""Named training recipes: the settings of a training run (what ``chainrule train`` takes) and the
one table of their defaults, plus the optimizer and schedule those settings name.

    >>> s = train_settings(model="lenet")          # the digits LeNet recipe
    >>> s["channels"], s["epochs"], s["lr"]
    ([64, 128], 40, 0.05)
    >>> train_settings(epochs=3)["lr"] is None      # None: the optimizer's own (OPTIMIZER_LR)
    True

Settings resolve in layers, highest first: the ones given (a command line), then any further
layers (a configuration file, a resumed run's settings), then the recipe of the resulting model
and dataset. A value of None means "not set" in every layer.
"""
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
LR_SCHEDULES = ("none", "step", "cosine", "plateau")

# The learning rate each optimizer gets when neither the settings nor the model's recipe set one.
OPTIMIZER_LR = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3}

# Every setting of a training run, with its default when no layer and no recipe sets it.
DEFAULTS = {
    # data
    "dataset": "digits", "data_dir": None, "image_size": 32, "grayscale": False,
    "label_column": "label", "test_fraction": 0.2, "val_fraction": 0.1, "standardize": True,
    "augment": False,
    # model (channels / batch_norm None: the architecture's own, see chainrule.models.registry)
    "model": "mlp", "channels": None, "batch_norm": None, "hidden": (256,), "activation": "relu",
    "dropout": 0.0,
    # optimisation (lr None: OPTIMIZER_LR of the optimizer)
    "optimizer": "sgd", "lr": None, "momentum": 0.9, "weight_decay": 1e-4, "epochs": 50,
    "batch_size": 32, "lr_schedule": "none", "early_stopping": None,
    # run
    "seed": 0, "out": None, "save": None, "detect_anomaly": False, "progress": True,
}

# What a ConvNet changes, whatever the dataset.
MODEL_RECIPES = {
    "mlp": {},
    "lenet": {"hidden": (120, 84), "lr": 0.05, "weight_decay": 5e-4, "lr_schedule": "cosine",
              "epochs": 20},
    "alexnet": {"dropout": 0.5, "lr": 0.05, "weight_decay": 5e-4, "lr_schedule": "cosine",
                "epochs": 20},
    "vgg": {"hidden": (256,), "dropout": 0.5, "lr": 0.05, "weight_decay": 5e-4,
            "lr_schedule": "cosine", "epochs": 20},
}

# What a model changes on one dataset, over its MODEL_RECIPES entry.
# The digits recipe (examples/convnet_digits.py): LeNet with 64 and 128 filters (the original has
# 6 and 16) and batch norm, half the images shifted by a pixel, SGD + cosine for 40 epochs.
# Chosen by 5-fold cross-validation on the training part (3 fold seeds), not on the test split.
DATASET_RECIPES = {
    ("lenet", "digits"): {"channels": [64, 128], "batch_norm": True, "augment": True,
                          "weight_decay": 1e-3, "epochs": 40},
}


def recipe(model="mlp", dataset="digits"):
    """The complete default settings for ``model`` on ``dataset``."""
    if model not in MODEL_RECIPES:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODEL_RECIPES)}")
    return {**DEFAULTS, **MODEL_RECIPES[model], **DATASET_RECIPES.get((model, dataset), {})}


def train_settings(*layers, **given):
    """Complete settings: ``given`` first, then each of ``layers`` (dicts) in order, then the
    ``recipe`` of the model and dataset they name. None in any layer means "not set"."""
    merged = {}
    for layer in (given,) + layers:
        for key, value in layer.items():
            if value is not None:
                merged.setdefault(key, value)
    unknown = sorted(set(merged) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown training setting{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}")
    base = recipe(merged.get("model", DEFAULTS["model"]), merged.get("dataset", DEFAULTS["dataset"]))
    return {**base, **merged}


def learning_rate(settings):
    """The learning rate the settings give: their ``lr``, else the optimizer's OPTIMIZER_LR."""
    lr = settings.get("lr")
    return lr if lr is not None else OPTIMIZER_LR[settings["optimizer"]]


def build_optimizer(settings, params):
    """(optimizer, lr) for ``settings`` (optimizer, lr, momentum, weight_decay) over ``params``."""
    from .. import optim
    name, lr, wd = settings["optimizer"], learning_rate(settings), settings["weight_decay"]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=settings["momentum"], weight_decay=wd), lr
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd), lr
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=wd), lr
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=settings["momentum"], weight_decay=wd), lr
    raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")


def build_scheduler(settings, opt):
    """The learning-rate schedule ``settings['lr_schedule']`` names (stepped each epoch), or None:
    step (x0.1 at 1/2 and 3/4 of the epochs), cosine (to 0 at the last epoch), plateau (x0.5 when
    the validation loss stalls for 3 epochs)."""
    from .. import optim
    kind, epochs = settings.get("lr_schedule", "none"), settings.get("epochs")
    if kind == "step":
        return optim.MultiStepLR(opt, milestones=sorted({max(1, epochs // 2),
                                                         max(2, 3 * epochs // 4)}), gamma=0.1)
    if kind == "cosine":
        return optim.CosineAnnealingLR(opt, T_max=epochs)
    if kind == "plateau":
        return optim.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    return None
