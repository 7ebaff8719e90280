"""A synthetic captioning set: small images of one to three coloured shapes on a 3x3 grid, each with
captions such as "a red circle above a blue square".

Each scene puts 1..3 objects (a colour out of red, green, blue, yellow and a shape out of circle,
square, triangle) in distinct cells of a 3x3 grid, with a little jitter of position and size, on a
dark, slightly noisy background. Every image gets two captions:

- one object: "a red circle in the top left" and "a red circle";
- two or three objects, read in order (top to bottom, left to right), each pair joined by
  "above" (the next one is on a lower row) or "to the left of" (same row): "a red circle above a
  blue square to the left of a green triangle", and the same scene described from the last
  object back: "a green triangle to the right of a blue square below a red circle".

>>> images, captions, scenes = make_shapes(1000, size=24, seed=0)    # (1000, 3, 24, 24), 1000 x 2
>>> write_shapes_dataset("shapes", 1000, seed=0)                    # shapes/images/*.png + captions.tsv
"""
import os

import numpy as np

__all__ = ["COLOURS", "SHAPES", "make_shapes", "random_scene", "render_scene", "describe",
           "write_shapes_dataset"]

COLOURS = {"red": (0.90, 0.15, 0.15), "green": (0.15, 0.80, 0.25), "blue": (0.20, 0.35, 0.95),
           "yellow": (0.95, 0.85, 0.15)}
SHAPES = ("circle", "square", "triangle")
_ROWS = ("top", "middle", "bottom")
_COLS = ("left", "middle", "right")
_PLACE = {(0, 0): "in the top left", (0, 1): "at the top", (0, 2): "in the top right",
          (1, 0): "on the left", (1, 1): "in the middle", (1, 2): "on the right",
          (2, 0): "in the bottom left", (2, 1): "at the bottom", (2, 2): "in the bottom right"}


def random_scene(rng, min_objects=1, max_objects=3):
    """A scene: a list of objects (dicts: shape, colour, row, col, dy, dx, scale) in reading order."""
    k = int(rng.integers(min_objects, max_objects + 1))
    cells = np.sort(rng.choice(9, size=k, replace=False))
    colours = list(COLOURS)
    return [{"shape": SHAPES[rng.integers(len(SHAPES))],
             "colour": colours[rng.integers(len(colours))],
             "row": int(c // 3), "col": int(c % 3),
             "dy": float(rng.uniform(-1, 1)), "dx": float(rng.uniform(-1, 1)),
             "scale": float(rng.uniform(0.85, 1.1))} for c in cells]


def _mask(shape, yy, xx, cy, cx, r):
    if shape == "circle":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if shape == "square":
        h = 0.82 * r
        return (np.abs(yy - cy) <= h) & (np.abs(xx - cx) <= h)
    # an upright triangle: apex at the top, base at the bottom
    top, bottom = cy - r, cy + 0.8 * r
    half = (yy - top) / (bottom - top) * r
    return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half)


def render_scene(scene, size=24, noise=0.03, rng=None, supersample=4):
    """The scene as a float32 image (3, size, size) in [0, 1], anti-aliased by supersampling."""
    s = size * supersample
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64) + 0.5
    img = np.zeros((3, s, s))
    cell = s / 3.0
    for o in scene:
        r = 0.40 * cell * o["scale"]
        slack = max(cell / 2 - r - supersample, 0.0)
        cy = (o["row"] + 0.5) * cell + o["dy"] * slack
        cx = (o["col"] + 0.5) * cell + o["dx"] * slack
        m = _mask(o["shape"], yy, xx, cy, cx, r)
        img[:, m] = np.asarray(COLOURS[o["colour"]])[:, None]
    img = img.reshape(3, size, supersample, size, supersample).mean(axis=(2, 4))
    if noise:
        rng = rng if rng is not None else np.random.default_rng(0)
        img = img + rng.normal(0.0, noise, img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _np(o):
    return f"a {o['colour']} {o['shape']}"


def describe(scene):
    """The scene's captions: [forward (reading order), backward (or, for one object, short)]."""
    if len(scene) == 1:
        o = scene[0]
        return [f"{_np(o)} {_PLACE[(o['row'], o['col'])]}", _np(o)]
    fwd, back = [_np(scene[0])], [_np(scene[-1])]
    for a, b in zip(scene, scene[1:]):
        fwd.append(("above " if b["row"] > a["row"] else "to the left of ") + _np(b))
    rev = scene[::-1]
    for a, b in zip(rev, rev[1:]):
        back.append(("below " if b["row"] < a["row"] else "to the right of ") + _np(b))
    return [" ".join(fwd), " ".join(back)]


def make_shapes(n, size=24, min_objects=1, max_objects=3, seed=0, noise=0.03):
    """``n`` scenes as ``(images float32 (n, 3, size, size), captions (n lists of 2 strings),
    scenes)``; the same seed gives the same set."""
    if n < 1:
        raise ValueError(f"make_shapes: n must be positive, got {n}")
    if not 1 <= min_objects <= max_objects <= 3:
        raise ValueError(f"make_shapes: need 1 <= min_objects <= max_objects <= 3, got "
                         f"{min_objects}, {max_objects}")
    if size < 12:
        raise ValueError(f"make_shapes: size must be at least 12 pixels, got {size}")
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    captions, scenes = [], []
    for i in range(n):
        scene = random_scene(rng, min_objects, max_objects)
        images[i] = render_scene(scene, size, noise, rng)
        captions.append(describe(scene))
        scenes.append(scene)
    return images, captions, scenes


def write_shapes_dataset(root, n, size=24, min_objects=1, max_objects=3, seed=0, noise=0.03):
    """Write ``n`` scenes as ``root/images/00000.png ...`` and ``root/captions.tsv`` (two lines per
    image). Returns the captions file's path (``load_caption_dataset`` reads it back)."""
    from PIL import Image
    from .captions import write_captions
    images, captions, _ = make_shapes(n, size, min_objects, max_objects, seed, noise)
    img_dir = os.path.join(os.fspath(root), "images")
    os.makedirs(img_dir, exist_ok=True)
    width = max(5, len(str(n - 1)))
    pairs = []
    for i, (x, caps) in enumerate(zip(images, captions)):
        name = f"{i:0{width}d}.png"
        a = np.round(x.transpose(1, 2, 0) * 255).astype(np.uint8)
        Image.fromarray(a, "RGB").save(os.path.join(img_dir, name))
        pairs += [(name, c) for c in caps]
    path = os.path.join(os.fspath(root), "captions.tsv")
    write_captions(path, pairs)
    return path
