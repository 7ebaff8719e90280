"""Datasets as a training run reads them: loaded by name (digits, mnist1d, mnist, fashion-mnist,
cifar10, a folder of images, a CSV file), split, standardised with the training split's
statistics (ConvNets: per-channel mean subtraction), and augmented.

``settings`` are those of ``chainrule.train.recipes.train_settings`` (dataset, data_dir,
image_size, grayscale, label_column, test_fraction, val_fraction, standardize, seed, model).

    >>> from chainrule.train.recipes import train_settings
    >>> d = prepare_data(train_settings(dataset="digits"))
    >>> d["Xtr"].shape, d["n_classes"]
    ((1293, 64), 10)
"""
import os

import numpy as np

IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")    # or a folder of images


def _need_dir(settings, name):
    d = settings.get("data_dir")
    if not d:
        raise ValueError(f"--dataset {name} reads the files you downloaded: give their folder with "
                         f"--data-dir DIR")
    return os.path.expanduser(d)


def _label(spec):
    """A label column given as text: its index if it is a number (-1 = last), else its name."""
    return int(spec) if str(spec).lstrip("-").isdigit() else spec


def load_images(settings):
    """Train and test images (N, C, H, W) float32 in [0, 1] for an image dataset (mnist,
    fashion-mnist, cifar10 or a folder with one sub-folder per class), as ``load_dataset``
    returns them; None for any other dataset."""
    from . import datasets, train_val_split
    name = settings["dataset"]
    if name in ("mnist", "fashion-mnist"):
        d = _need_dir(settings, name)
        Xtr, ytr = datasets.load_mnist(d, "train")
        Xte, yte = datasets.load_mnist(d, "t10k")
        classes = (list(datasets.FASHION_MNIST_CLASSES) if name == "fashion-mnist"
                   else [str(i) for i in range(10)])
    elif name == "cifar10":
        Xtr, ytr, Xte, yte = datasets.load_cifar10(_need_dir(settings, name))
        classes = list(datasets.CIFAR10_CLASSES)
    elif os.path.isdir(name):
        s = int(settings["image_size"])
        mode = "L" if settings.get("grayscale") else "RGB"
        X, y, classes = datasets.load_image_folder(name, size=(s, s), mode=mode)
        if len(classes) < 2:
            raise ValueError(f"{name}: found {len(classes)} class folder; a classifier needs at "
                             f"least two sub-folders, one per class")
        Xtr, Xte, ytr, yte = train_val_split(X, y, val_fraction=settings["test_fraction"],
                                             seed=settings["seed"], stratify=y)
    else:
        return None
    return {"Xtr": Xtr, "ytr": ytr, "Xte": Xte, "yte": yte, "n_classes": len(classes),
            "classes": classes, "image_shape": [int(n) for n in Xtr.shape[1:]]}


def load_dataset(settings):
    """The dataset split into train and test: {"Xtr", "ytr", "Xte", "yte", "n_classes",
    "classes", "image_shape"} (image_shape (C, H, W) for images, else None)."""
    from . import datasets, train_val_split
    image_shape, classes = None, None
    name = settings["dataset"]
    if name == "digits":
        Xtr, ytr, Xte, yte = datasets.digits_split(test_fraction=settings["test_fraction"],
                                                   seed=settings["seed"])
        image_shape = [1, 8, 8]
    elif name == "mnist1d":
        Xtr, ytr, Xte, yte = datasets.mnist1d()
    elif (images := load_images(settings)) is not None:      # mnist, cifar10, image folders
        return images
    else:
        csv = datasets.load_csv(name, label_column=_label(settings["label_column"]),
                                label_map="index")
        X, y = csv.X, csv.y.astype(np.int64)
        classes = [str(c) for c in csv.classes] if csv.classes is not None else None
        if classes is not None and len(classes) < 2:     # it would "learn" 100% of nothing
            raise ValueError(f"{name}: every row has the label {classes[0]!r} (column "
                             f"{csv.label_name!r}); a classifier needs at least two classes")
        Xtr, Xte, ytr, yte = train_val_split(X, y, val_fraction=settings["test_fraction"],
                                             seed=settings["seed"], stratify=y)
    n_classes = int(max(ytr.max(), yte.max())) + 1
    if classes is None:
        classes = [str(i) for i in range(n_classes)]
    return {"Xtr": Xtr, "ytr": ytr, "Xte": Xte, "yte": yte, "n_classes": n_classes,
            "classes": classes, "image_shape": image_shape}


def channel_mean(X):
    """The per-channel mean (C,) of training images X (N, C, H, W), as float32."""
    return X.mean(axis=(0, 2, 3), dtype=np.float64).astype(np.float32)


def subtract_mean(X, mean, shape):
    """X (N, ...) reshaped to images (N, *shape), float32, minus the per-channel mean (or None)."""
    X = np.asarray(X, dtype=np.float32).reshape((len(X),) + tuple(shape))
    if mean is not None:
        X = X - np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    return X


def prepare_data(settings, images=False):
    """Train / validation / test splits, standardised with the training split's statistics and
    flattened to (N, features) float32, plus what describes them (classes, image_shape, mean,
    std, channel_mean). With ``images`` (a ConvNet's input) they stay (N, C, H, W), centred with
    the training split's per-channel mean. The same settings always give the same arrays."""
    from . import train_val_split
    d = load_dataset(settings)
    Xtr, Xval, ytr, yval = train_val_split(d["Xtr"], d["ytr"], val_fraction=settings["val_fraction"],
                                           seed=settings["seed"], stratify=d["ytr"])
    Xte = d["Xte"]
    d["channel_mean"] = None
    if images:
        if not d["image_shape"]:
            raise ValueError(f"--model {settings.get('model')} needs images: --dataset digits, "
                             f"mnist, fashion-mnist, cifar10 or a folder of images, got "
                             f"{settings['dataset']!r}")
        shape = d["image_shape"]
        cm = channel_mean(Xtr.reshape([len(Xtr)] + list(shape))) if settings["standardize"] else None
        Xtr, Xval, Xte = (subtract_mean(X, cm, shape) for X in (Xtr, Xval, Xte))
        d.update(Xtr=Xtr, ytr=ytr, Xval=Xval, yval=yval, Xte=Xte, mean=None, std=None,
                 channel_mean=cm)
        return d
    Xtr, Xval, Xte = (X.reshape(len(X), -1) for X in (Xtr, Xval, Xte))
    mean = std = None
    if settings["standardize"]:
        mean, std = Xtr.mean(axis=0), Xtr.std(axis=0) + 1e-2
        Xtr, Xval, Xte = ((X - mean) / std for X in (Xtr, Xval, Xte))
    Xtr, Xval, Xte = (X.astype(np.float32).reshape(len(X), -1) for X in (Xtr, Xval, Xte))
    d.update(Xtr=Xtr, ytr=ytr, Xval=Xval, yval=yval, Xte=Xte, mean=mean, std=std)
    return d


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
    from .transforms import Compose, RandomApply, RandomHorizontalFlip, RandomShift
    side = min(image_shape[1:])
    shift = RandomShift(max(1, side // 8), pad_mode="edge")
    ts = [shift if side >= 16 else RandomApply(shift, p=0.5)]
    if natural_images(dataset):
        ts.append(RandomHorizontalFlip())
    return Compose(ts)


def load_labeled(path, settings, classes):
    """(X, y, description) of a labelled dataset to evaluate a trained model on, its labels as
    indices into the model's ``classes``: digits (all 1797), the mnist1d test set, the test set of
    mnist / fashion-mnist / cifar10 (from settings' data_dir), a folder of images (all of them;
    its sub-folders must be among ``classes``; read at settings' image_shape), or a CSV file."""
    from . import datasets
    if path in IMAGE_DATASETS[1:]:
        d = load_images({**settings, "dataset": path})
        return d["Xte"], d["yte"], f"the {path} test set"
    if os.path.isdir(path):
        shape = settings.get("image_shape") or [1 if settings.get("grayscale") else 3,
                                                settings["image_size"], settings["image_size"]]
        c, h, w = (int(n) for n in shape)
        X, y, found = datasets.load_image_folder(path, size=(h, w), mode="L" if c == 1 else "RGB")
        index = {str(name): k for k, name in enumerate(classes)}
        unknown = [f for f in found if f not in index]
        if unknown:
            raise ValueError(f"{path}: class folders {', '.join(unknown)} are not classes of this "
                             f"model ({', '.join(map(str, classes))})")
        return X, np.array([index[found[k]] for k in y], dtype=np.int64), f"{path} (all {len(X)})"
    if path == "digits":
        X, y = datasets.digits()
        return X, y, "digits (all 1797)"
    if path == "mnist1d":
        _, _, X, y = datasets.mnist1d()
        return X, y, "the mnist1d test set"
    csv = datasets.load_csv(path, label_column=_label(settings["label_column"]),
                            label_map={c: i for i, c in enumerate(classes)})
    return csv.X, csv.y.astype(np.int64), path


def image_files(folder):
    """The image files under ``folder`` (searched recursively, hidden files skipped), sorted."""
    from .datasets.image_folder import IMG_EXTENSIONS
    if not os.path.isdir(folder):
        raise NotADirectoryError(20, "not a folder of images", folder)
    files = []
    for d, dirs, names in os.walk(folder):
        dirs.sort()
        files += [os.path.join(d, n) for n in sorted(names)
                  if n.lower().endswith(IMG_EXTENSIONS) and not n.startswith(".")]
    if not files:
        raise FileNotFoundError(2, "no image files in this folder", folder)
    return files


def read_inputs(path, run_config):
    """(ids, X) of unlabelled inputs: the rows of a CSV file (a label column named as in
    ``run_config``, if present, is ignored) or the images of a folder (at run_config's
    image_shape)."""
    from . import datasets
    from .datasets.image_folder import load_image
    if os.path.isdir(path):
        shape = run_config.get("image_shape")
        if not shape:
            raise ValueError(f"{path} is a folder of images, but this model was trained on "
                             f"{run_config.get('dataset', 'tabular data')} without an image shape; "
                             "give a CSV file")
        c, h, w = shape
        files = image_files(path)
        X = np.stack([load_image(f, size=(h, w), mode="L" if c == 1 else "RGB", where="predict")
                      for f in files])
        return [os.path.relpath(f, path) for f in files], X
    label = run_config.get("label_column", "label")
    try:
        csv = datasets.load_csv(path, label_column=label, label_map="auto")
    except ValueError as e:
        if "label column" not in str(e):
            raise
        csv = datasets.load_csv(path, label_column=None)
    return [str(i) for i in range(len(csv.X))], csv.X


def caption_data(captions_file=None, image_dir=None, synthetic=4000, size=24, seed=0,
                 write_synthetic=None, log=None):
    """(CaptionData, description) for captioning: a captions file and its images (resized to
    ``size``, RGB), else ``synthetic`` generated shape scenes (seed ``seed``), also written as
    ``write_synthetic``/images/*.png + captions.tsv when given (then read back from there).
    ``size`` must be a multiple of 8 (the captioner's encoder halves it three times)."""
    from .captions import CaptionData, load_caption_dataset
    if size % 8:
        raise ValueError(f"--size must be a multiple of 8, got {size}")
    if captions_file:
        return load_caption_dataset(captions_file, image_dir=image_dir, size=size,
                                    mode="RGB"), captions_file
    from .shapes import make_shapes, write_shapes_dataset
    where = f"{synthetic} synthetic shape scenes"
    if write_synthetic:
        path = write_shapes_dataset(write_synthetic, synthetic, size=size, seed=seed)
        if log:
            log(f"wrote {synthetic} scenes to {path}")
        return load_caption_dataset(path, size=size), where
    X, caps, _ = make_shapes(synthetic, size=size, seed=seed)
    return CaptionData(X, [f"{i:05d}.png" for i in range(len(X))], caps), where
