"""Image captioning data: an image folder plus a captions file.

The captions file holds one caption a line, ``image_name<TAB>caption``, with several lines (several
captions) per image allowed; image names are paths relative to the image folder. Blank lines are
skipped.

    images/0001.png
    images/0002.png
    captions.tsv:   0001.png<TAB>a red circle above a blue square
                    0001.png<TAB>a blue square below a red circle
                    0002.png<TAB>a green triangle in the middle

Every problem (a line without a tab, an empty image name or caption, an image that is not in the
folder) raises ValueError naming the file and the line.

>>> data = load_caption_dataset("shapes/captions.tsv", size=24)     # images/ next to the file
>>> vocab = build_caption_vocab(data)                               # <pad> <unk> <bos> <eos> + words
>>> ids, lengths = encode_captions(vocab, data.tokens[0])           # (K, T) <bos> ... <eos>, padded
"""
import os

import numpy as np

from chainrule.data.text import BOS, EOS, PAD, UNK, Vocabulary, tokenize

__all__ = ["CaptionData", "read_captions", "load_caption_dataset", "build_caption_vocab",
           "encode_captions", "caption_tokens", "CAPTION_SPECIALS", "write_captions",
           "caption_batches"]

CAPTION_SPECIALS = (PAD, UNK, BOS, EOS)


def caption_tokens(caption):
    """A caption's tokens: lower-cased words and punctuation marks (``chainrule.data.text.tokenize``)."""
    return tokenize(caption)


def read_captions(path, image_dir=None, encoding="utf-8"):
    """Parse a captions file into ``{image_name: [caption, ...]}`` (in file order).

    With ``image_dir`` every image named must exist there. Errors name the file and the line:
    a line without exactly one tab (``image_name<TAB>caption``), an empty image name, an empty
    caption (or one with no words), a missing image, a file with no captions.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"read_captions: no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"read_captions: {path} is a directory, expected a captions file")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: cannot decode byte {raw[e.start]:#04x} as "
                         f"{encoding}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    out = {}
    checked = {}
    for ln, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            what = "no tab" if len(parts) == 1 else f"{len(parts) - 1} tabs"
            raise ValueError(f"{path}, line {ln}: expected 'image_name<TAB>caption' (one tab), "
                             f"found {what}: {line[:60]!r}")
        name, caption = parts[0].strip(), parts[1].strip()
        if not name:
            raise ValueError(f"{path}, line {ln}: empty image name before the tab: {line[:60]!r}")
        if not caption or not caption_tokens(caption):
            raise ValueError(f"{path}, line {ln}: empty caption for image {name!r}")
        if image_dir is not None:
            ok = checked.get(name)
            if ok is None:
                ok = checked[name] = os.path.isfile(os.path.join(image_dir, name))
            if not ok:
                raise ValueError(f"{path}, line {ln}: image {name!r} not found in {image_dir}")
        out.setdefault(name, []).append(caption)
    if not out:
        raise ValueError(f"{path}: no captions; expected lines 'image_name<TAB>caption'")
    return out


def write_captions(path, captions):
    """Write ``{image_name: [caption, ...]}`` (or a list of (name, caption) pairs) as a captions file."""
    items = captions.items() if isinstance(captions, dict) else None
    pairs = ([(n, c) for n, cs in items for c in cs] if items is not None else list(captions))
    with open(os.fspath(path), "w", encoding="utf-8", newline="\n") as f:
        for n, c in pairs:
            if "\t" in n or "\n" in n or "\t" in c or "\n" in c:
                raise ValueError(f"write_captions: tabs and newlines cannot be stored: {n!r} {c!r}")
            f.write(f"{n}\t{c}\n")
    return path


class CaptionData:
    """Images with their captions: ``images`` float32 (M, C, H, W) in [0, 1], ``names`` (M,),
    ``captions`` (M lists of strings), ``tokens`` (M lists of token lists).

    ``subset(indices)`` and ``split(val_fraction, seed)`` split by image, so that the captions of
    one image never land on both sides.
    """

    def __init__(self, images, names, captions, tokens=None):
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(f"CaptionData: images must be (M, C, H, W), got shape {images.shape}")
        if not len(images) == len(names) == len(captions):
            raise ValueError(f"CaptionData: {len(images)} images, {len(names)} names, "
                             f"{len(captions)} caption lists")
        self.images, self.names = images, list(names)
        self.captions = [list(c) for c in captions]
        self.tokens = tokens if tokens is not None else [[caption_tokens(c) for c in cs]
                                                        for cs in self.captions]

    def __len__(self):
        return len(self.images)

    def __repr__(self):
        n = sum(len(c) for c in self.captions)
        return f"CaptionData({len(self)} images {tuple(self.images.shape[1:])}, {n} captions)"

    def subset(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        return CaptionData(self.images[idx], [self.names[i] for i in idx],
                           [self.captions[i] for i in idx], [self.tokens[i] for i in idx])

    def split(self, val_fraction=0.2, seed=0):
        """(train, val) by image, shuffled with ``seed``."""
        if not 0 < val_fraction < 1:
            raise ValueError(f"CaptionData.split: val_fraction must be in (0, 1), got {val_fraction}")
        perm = np.random.default_rng(seed).permutation(len(self))
        n_val = max(1, int(round(val_fraction * len(self))))
        if n_val >= len(self):
            raise ValueError(f"CaptionData.split: {len(self)} images are too few to split")
        return self.subset(np.sort(perm[n_val:])), self.subset(np.sort(perm[:n_val]))


def _default_image_dir(captions_file):
    base = os.path.dirname(os.path.abspath(captions_file))
    images = os.path.join(base, "images")
    return images if os.path.isdir(images) else base


def load_caption_dataset(captions_file, image_dir=None, size=None, mode="RGB"):
    """Read a captions file and its images: a ``CaptionData``.

    ``image_dir``: the folder the image names are relative to (default: ``images/`` next to the
    captions file if it exists, else the captions file's folder). ``size`` (an int or (H, W))
    resizes every image; without it all images must share one size. ``mode``: 'RGB' or 'L'.
    """
    from chainrule.data.datasets.image_folder import load_image
    image_dir = _default_image_dir(captions_file) if image_dir is None else os.fspath(image_dir)
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(f"load_caption_dataset: image folder {image_dir} does not exist")
    caps = read_captions(captions_file, image_dir=image_dir)
    names = list(caps)
    first = None
    images = []
    for name in names:
        x = load_image(os.path.join(image_dir, name), size=size, mode=mode,
                       where="load_caption_dataset")
        if first is None:
            first = (name, x.shape)
        elif x.shape != first[1]:
            raise ValueError(f"load_caption_dataset: {name} is {x.shape[1]}x{x.shape[2]} but "
                             f"{first[0]} is {first[1][1]}x{first[1][2]}; pass size=(H, W)")
        images.append(x)
    return CaptionData(np.stack(images), names, [caps[n] for n in names])


def build_caption_vocab(data, min_freq=1):
    """A ``Vocabulary`` of the caption words (``data``: a CaptionData, or lists of token lists),
    with the specials <pad> = 0, <unk> = 1, <bos> = 2, <eos> = 3."""
    tokens = data.tokens if isinstance(data, CaptionData) else data
    return Vocabulary.build((t for per_image in tokens for t in per_image), min_freq=min_freq,
                            specials=CAPTION_SPECIALS)


def encode_captions(vocab, token_lists, max_len=None):
    """Token lists -> ``(ids (K, T) int64, lengths (K,))``: each ``<bos> w1 ... wn <eos>``, padded
    with <pad> at the end. ``max_len`` caps the words kept (the <eos> is always there)."""
    seqs = [list(t)[:max_len] if max_len is not None else list(t) for t in token_lists]
    return vocab.encode_batch(seqs, add_bos=True, add_eos=True)


def caption_batches(data, vocab, batch_size, seed=0, dtype=None):
    """Training batches drawn anew each epoch: a function ``epoch -> batches`` (``Trainer.fit``'s
    per-epoch data) of ``(images (B, C, H, W), ids (B, T))``. Each epoch visits every image once,
    in a random order, with one of its captions drawn at random: every caption is seen over the
    epochs while the encoder runs once per image per epoch. ``ids`` are ``<bos> w1 ... wn <eos>``,
    padded to the batch's longest caption; ``dtype``: the images' (the model's) float type."""
    rng = np.random.default_rng(seed)
    per_image = [encode_captions(vocab, toks)[0] for toks in data.tokens]
    images = data.images if dtype is None else data.images.astype(dtype)
    n = len(data)

    def epoch_batches(epoch):
        perm = rng.permutation(n)
        pick = rng.integers(0, 1 << 30, size=n)
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            rows = [per_image[i][pick[i] % len(per_image[i])] for i in idx]
            T = max(int((r != vocab.pad_index).sum()) for r in rows)
            ids = np.full((len(rows), T), vocab.pad_index, dtype=np.int64)
            for j, r in enumerate(rows):
                ids[j, :len(r)] = r[:T]
            yield images[idx], ids

    return epoch_batches
