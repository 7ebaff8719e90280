"""Images in a folder with one sub-folder per class (torchvision's ImageFolder layout), read with Pillow.

    root/cat/001.png
    root/cat/002.jpg
    root/dog/a.png

Classes are the sub-folder names in sorted order, so class indices do not depend on the order the
file system lists them in. Pillow is imported only when an image is read.
"""
import os

import numpy as np

from chainrule.data.dataset import Dataset

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
_MODES = {"RGB": 3, "L": 1}


def _pil():
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("chainrule.data.datasets.ImageFolder needs Pillow to read images: "
                          "pip install chainrule[images]") from e
    return Image


def _check_size(size, where):
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: size must be an int or a pair (H, W), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{where}: size must be positive, got {(h, w)}")
    return h, w


def find_classes(root, extensions=IMG_EXTENSIONS, where="ImageFolder"):
    """``(samples, classes)``: the (path, class index) of every image under ``root``'s
    sub-folders (searched recursively, in sorted order), and the sorted class names.

    Errors: ``root`` missing, no class sub-folders, or a class folder with no image files.
    """
    root = os.path.expanduser(os.fspath(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{where}: {root} is not a directory")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise FileNotFoundError(f"{where}: no classes found in {root}: expected one sub-folder per "
                                f"class (root/cat/1.png, root/dog/2.png, ...)")
    exts = tuple(e.lower() for e in extensions)
    samples = []
    for k, name in enumerate(classes):
        folder = os.path.join(root, name)
        found = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames.sort()
            found += [os.path.join(dirpath, f) for f in sorted(filenames)
                      if f.lower().endswith(exts) and not f.startswith(".")]
        if not found:
            raise FileNotFoundError(f"{where}: class folder {folder} holds no image files "
                                    f"(extensions {', '.join(exts)})")
        samples += [(p, k) for p in found]
    return samples, classes


def load_image(path, size=None, mode="RGB", where="load_image"):
    """One image file as float32 (C, H, W) in [0, 1]; C = 3 for ``mode='RGB'``, 1 for ``'L'``.

    ``size=(H, W)`` (or an int for a square) resizes it bilinearly. An unreadable file is an error
    naming it.
    """
    if mode not in _MODES:
        raise ValueError(f"{where}: mode must be 'RGB' or 'L', got {mode!r}")
    size = _check_size(size, where)
    Image = _pil()
    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)   # PIL sizes are (W, H)
            a = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as e:   # UnidentifiedImageError is an OSError
        raise ValueError(f"{where}: cannot read image {path}: {e}") from None
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return a.astype(np.float32) / np.float32(255.0)


class ImageFolder(Dataset):
    """A dataset of images stored one sub-folder per class; ``ds[i] == (x, y)`` with x float32
    (C, H, W) in [0, 1] and y the int64 class index. Images are read (lazily) on each access.

    Args:
        root: the folder whose sub-folders are the classes (sorted by name).
        size: ``(H, W)`` (or an int) to resize every image to; ``None`` keeps each image's size,
            so a batch needs images of equal size.
        mode: ``'RGB'`` (C = 3) or ``'L'`` grayscale (C = 1); any stored mode is converted.
        extensions: the file endings that count as images (case-insensitive).

    Attributes: ``classes`` (sorted names), ``class_to_idx`` (name -> index), ``samples``
    (list of (path, index)), ``targets`` (int64 (N,)).

    >>> ds = ImageFolder("pets/train", size=(32, 32))
    >>> loader = DataLoader(ds, batch_size=64, shuffle=True, seed=0)
    """

    def __init__(self, root, size=None, mode="RGB", extensions=IMG_EXTENSIONS):
        if mode not in _MODES:
            raise ValueError(f"ImageFolder: mode must be 'RGB' or 'L', got {mode!r}")
        self.root = os.path.expanduser(os.fspath(root))
        self.size = _check_size(size, "ImageFolder")
        self.mode = mode
        self.samples, self.classes = find_classes(self.root, extensions)
        self.class_to_idx = {c: k for k, c in enumerate(self.classes)}
        self.targets = np.array([k for _, k in self.samples], dtype=np.int64)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        n = len(self)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"ImageFolder: index must be an int, got {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"ImageFolder: index {index} out of range for {n} images")
        path, k = self.samples[index]
        return load_image(path, self.size, self.mode, where="ImageFolder"), np.int64(k)

    def __repr__(self):
        return (f"ImageFolder({self.root!r}: {len(self)} images, {len(self.classes)} classes, "
                f"size={self.size}, mode={self.mode!r})")


def load_image_folder(root, size=None, mode="RGB", extensions=IMG_EXTENSIONS):
    """Read a class-per-sub-folder image tree eagerly: ``(X, y, classes)``.

    X float32 (N, C, H, W) in [0, 1], y int64 (N,), classes the sorted sub-folder names (y's
    index into them). Without ``size`` all images must already share one size.

    >>> X, y, classes = load_image_folder("shapes", size=(28, 28), mode="L")
    """
    ds = ImageFolder(root, size=size, mode=mode, extensions=extensions)
    first = ds[0][0]
    X = np.empty((len(ds),) + first.shape, dtype=np.float32)
    X[0] = first
    for i in range(1, len(ds)):
        x = ds[i][0]
        if x.shape != first.shape:
            raise ValueError(f"load_image_folder: {ds.samples[i][0]} is {x.shape[1]}x{x.shape[2]} "
                             f"but {ds.samples[0][0]} is {first.shape[1]}x{first.shape[2]}; pass "
                             f"size=(H, W) to resize every image")
        X[i] = x
    return X, ds.targets.copy(), list(ds.classes)
