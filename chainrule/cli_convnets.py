"""ConvNets in ``chainrule train`` (and evaluate / predict / summary / lr-find): image datasets,
the models' settings, per-model default recipes, live augmentation and per-channel mean
subtraction. ``chainrule.cli`` calls these; they use only the public API.

    chainrule train --model lenet --dataset digits          # the digits recipe: test_accuracy=0.9861
    chainrule train --model vgg --dataset mnist --data-dir ~/data/mnist --epochs 5 --augment
    chainrule train --model alexnet --dataset cifar10 --data-dir ~/data/cifar-10-batches-bin
    chainrule train --model lenet --dataset path/to/folder --image-size 32 --augment
"""
import os

import numpy as np

# --model name -> constructor in chainrule.models (the checkpoint's config "kind")
CONV_MODELS = {"lenet": "lenet5", "alexnet": "alexnet_small", "vgg": "vgg_small"}
MODELS = ("mlp",) + tuple(CONV_MODELS)
IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")    # or a folder of images

# Defaults of `chainrule train` that change with --model (under a --config file, a resumed run's
# settings and the command line).
MODEL_DEFAULTS = {
    "lenet": {"hidden": (120, 84), "lr": 0.05, "weight_decay": 5e-4, "lr_schedule": "cosine",
              "epochs": 20},
    "alexnet": {"dropout": 0.5, "lr": 0.05, "weight_decay": 5e-4, "lr_schedule": "cosine",
                "epochs": 20},
    "vgg": {"hidden": (256,), "dropout": 0.5, "lr": 0.05, "weight_decay": 5e-4,
            "lr_schedule": "cosine", "epochs": 20},
}
# The digits recipe (examples/convnet_digits.py): LeNet with 64 and 128 filters (the original has
# 6 and 16) and batch norm, half the images shifted by a pixel, SGD + cosine for 40 epochs.
# Chosen by 5-fold cross-validation on the training part (3 fold seeds), not on the test split.
DIGITS_RECIPE = {"channels": "64,128", "batch_norm": True, "augment": True, "lr": 0.05,
                 "weight_decay": 1e-3, "lr_schedule": "cosine", "epochs": 40, "batch_size": 32}


def is_conv(model):
    return model in CONV_MODELS


def model_defaults(model, dataset):
    """The defaults ``--model model --dataset dataset`` brings (empty for the MLP)."""
    out = dict(MODEL_DEFAULTS.get(model, {}))
    if model == "lenet" and dataset == "digits":
        out.update(DIGITS_RECIPE)
    return out


def parse_channels(text):
    """'32,64' -> [32, 64]; 'M' (VGG's max pool) kept: '32,32,M,64' -> [32, 32, 'M', 64]."""
    out = []
    for s in str(text).split(","):
        s = s.strip()
        if not s:
            continue
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


# -- data -----------------------------------------------------------------------------------------

def _need_dir(args, name):
    d = getattr(args, "data_dir", None)
    if not d:
        raise ValueError(f"--dataset {name} reads the files you downloaded: give their folder with "
                         f"--data-dir DIR")
    return os.path.expanduser(d)


def load_images(args):
    """Train and test images (N, C, H, W) float32 in [0, 1] for an image --dataset (mnist,
    fashion-mnist, cifar10 or a folder with one sub-folder per class), as the dict
    ``chainrule.cli._load_raw`` returns; None for any other dataset."""
    from .data import datasets, train_val_split
    name = args.dataset
    if name in ("mnist", "fashion-mnist"):
        d = _need_dir(args, name)
        Xtr, ytr = datasets.load_mnist(d, "train")
        Xte, yte = datasets.load_mnist(d, "t10k")
        classes = (list(datasets.FASHION_MNIST_CLASSES) if name == "fashion-mnist"
                   else [str(i) for i in range(10)])
    elif name == "cifar10":
        Xtr, ytr, Xte, yte = datasets.load_cifar10(_need_dir(args, name))
        classes = list(datasets.CIFAR10_CLASSES)
    elif os.path.isdir(name):
        s = int(getattr(args, "image_size", 32))
        mode = "L" if getattr(args, "grayscale", False) else "RGB"
        X, y, classes = datasets.load_image_folder(name, size=(s, s), mode=mode)
        if len(classes) < 2:
            raise ValueError(f"{name}: found {len(classes)} class folder; a classifier needs at "
                             f"least two sub-folders, one per class")
        Xtr, Xte, ytr, yte = train_val_split(X, y, val_fraction=args.test_fraction, seed=args.seed,
                                             stratify=y)
    else:
        return None
    return {"Xtr": Xtr, "ytr": ytr, "Xte": Xte, "yte": yte, "n_classes": len(classes),
            "classes": classes, "image_shape": [int(n) for n in Xtr.shape[1:]]}


def channel_mean(X):
    """The per-channel mean (C,) of training images X (N, C, H, W), as float32."""
    return X.mean(axis=(0, 2, 3), dtype=np.float64).astype(np.float32)


def subtract_mean(X, mean, shape):
    """X (N, ...) reshaped to images (N, *shape), float32, minus the per-channel mean (or None)."""
    X = np.asarray(X, dtype=np.float32).reshape((len(X),) + tuple(shape))
    if mean is not None:
        X = X - np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    return X


def natural_images(dataset):
    """Photos (CIFAR-10, image folders) may be mirrored; digits and letters may not."""
    return dataset == "cifar10" or os.path.isdir(dataset)


def augmentation(dataset, image_shape):
    """Random shifts of up to 1/8 of the image side (3 pixels for 28x28, 4 for 32x32; edge
    padding, which commutes with the per-channel mean subtraction, so shifting the centred
    images equals shifting the raw ones), plus left-right flips for natural images.

    Images under 16 pixels (the 8x8 digits) get 1-pixel shifts on half of them only: a pixel is
    an eighth of the picture there, and shifting every digit cost accuracy in cross-validation
    (about 0.991 against 0.994 for half of them, and 0.994 for none)."""
    from .data.transforms import Compose, RandomApply, RandomHorizontalFlip, RandomShift
    side = min(image_shape[1:])
    shift = RandomShift(max(1, side // 8), pad_mode="edge")
    ts = [shift if side >= 16 else RandomApply(shift, p=0.5)]
    if natural_images(dataset):
        ts.append(RandomHorizontalFlip())
    return Compose(ts)


# -- models ---------------------------------------------------------------------------------------

def conv_config(args, image_shape, n_classes):
    """The ``model_config`` of a ConvNet: {"kind": constructor name, **its keyword arguments}."""
    if not image_shape:
        raise ValueError(f"--model {args.model} needs images: --dataset digits, mnist, "
                         f"fashion-mnist, cifar10 or a folder of images (got {args.dataset!r})")
    c, h, w = (int(n) for n in image_shape)
    if h != w:
        raise ValueError(f"--model {args.model} takes square images, got {h}x{w}")
    base = {"kind": CONV_MODELS[args.model], "in_channels": c, "num_classes": int(n_classes),
            "input_size": h}
    ch = args.channels
    hidden = [int(v) for v in args.hidden]
    if args.model == "lenet":
        ch = ch or [6, 16]
        if len(ch) != 2 or "M" in ch:
            raise ValueError(f"--model lenet: --channels takes the two convolutions' widths "
                             f"(e.g. 32,64), got {','.join(map(str, ch))}")
        return {**base, "channels": ch, "hidden": hidden, "batch_norm": bool(args.batch_norm)}
    if args.batch_norm:
        if args.model == "alexnet":
            raise ValueError("--model alexnet uses local response normalisation, not batch norm; "
                             "drop --batch-norm (or use --model vgg or lenet)")
    if args.model == "alexnet":
        ch = ch or [32]
        if len(ch) != 1 or "M" in ch:
            raise ValueError(f"--model alexnet: --channels takes one width (the first "
                             f"convolution's; the others are 2x, 3x, 3x, 2x), got "
                             f"{','.join(map(str, ch))}")
        return {**base, "width": ch[0], "dropout": float(args.dropout)}
    if len(hidden) != 1:
        raise ValueError(f"--model vgg has one hidden fully connected layer; give one size with "
                         f"--hidden, got {','.join(map(str, hidden))}")
    return {**base, "config": ch or [32, 32, "M", 64, 64, "M"], "batch_norm": bool(args.batch_norm),
            "hidden": hidden[0], "dropout": float(args.dropout)}


def build_conv(config):
    from . import models
    kind = config["kind"]
    if kind not in CONV_MODELS.values():
        return None
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k != "kind"}
    return getattr(models, kind)(**kw)


def conv_input_shape(config):
    s = int(config["input_size"])
    return (int(config["in_channels"]), s, s)


def load_labeled_images(path, run, classes):
    """``chainrule evaluate --dataset``: (X, y, description) for mnist / fashion-mnist / cifar10
    (their test sets, from the run's --data-dir) or a folder of images (all of them; its
    sub-folders must be among the run's classes); None for other datasets."""
    from .data import datasets
    if path in IMAGE_DATASETS[1:]:
        import argparse
        d = load_images(argparse.Namespace(**{**vars(run), "dataset": path}))
        return d["Xte"], d["yte"], f"the {path} test set"
    if not os.path.isdir(path):
        return None
    shape = getattr(run, "image_shape", None) or [1 if getattr(run, "grayscale", False) else 3,
                                                  run.image_size, run.image_size]
    c, h, w = (int(n) for n in shape)
    X, y, found = datasets.load_image_folder(path, size=(h, w), mode="L" if c == 1 else "RGB")
    index = {str(name): k for k, name in enumerate(classes)}
    unknown = [f for f in found if f not in index]
    if unknown:
        raise ValueError(f"{path}: class folders {', '.join(unknown)} are not classes of this "
                         f"model ({', '.join(map(str, classes))})")
    return X, np.array([index[found[k]] for k in y], dtype=np.int64), f"{path} (all {len(X)})"
