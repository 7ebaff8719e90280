"""Caption files (image_name<TAB>caption), caption datasets and the synthetic shapes set."""
import os

import numpy as np
import pytest

from chainrule.data.captions import (CaptionData, build_caption_vocab, load_caption_dataset,
                                     read_captions, write_captions)
from chainrule.data.shapes import describe, make_shapes, render_scene, write_shapes_dataset


def _write(path, text, mode="w"):
    with open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
        f.write(text)
    return str(path)


def _images(folder, names):
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    for n in names:
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(os.path.join(folder, n))


# -- parsing ----------------------------------------------------------------------------------------

def test_read_captions_several_per_image(tmp_path):
    p = _write(tmp_path / "c.tsv", "a.png\ta red circle\n\nb.png\ta blue square\n"
                                   "a.png\tA Red Circle at the top.\r\n")
    caps = read_captions(p)
    assert caps == {"a.png": ["a red circle", "A Red Circle at the top."], "b.png": ["a blue square"]}
    p = _write(tmp_path / "bom.tsv", "\ufeffa.png\tone\n".encode("utf-8"), "wb")
    assert read_captions(p) == {"a.png": ["one"]}


@pytest.mark.parametrize("text, line, message", [
    ("a.png\tfine\nb.png a caption without a tab\n", 2, "expected 'image_name<TAB>caption'.*no tab"),
    ("a.png\tfine\n\nb.png\tone\ttwo\n", 3, "2 tabs"),
    ("a.png\tfine\nb.png\t   \n", 2, "empty caption for image 'b.png'"),
    ("a.png\t\n", 1, "empty caption for image 'a.png'"),
    ("a.png\tok\n\ta caption without an image\n", 2, "empty image name"),
])
def test_caption_file_errors_name_the_line(tmp_path, text, line, message):
    p = _write(tmp_path / "caps.tsv", text)
    with pytest.raises(ValueError, match=rf"caps\.tsv, line {line}: .*{message}"):
        read_captions(p)


def test_a_missing_image_names_the_line(tmp_path):
    _images(tmp_path / "images", ["a.png"])
    p = _write(tmp_path / "captions.tsv", "a.png\tone\na.png\ttwo\nmissing.png\tthree\n")
    with pytest.raises(ValueError, match=r"captions\.tsv, line 3: image 'missing.png' not found"):
        read_captions(p, image_dir=str(tmp_path / "images"))
    with pytest.raises(ValueError, match=r"line 3: image 'missing.png' not found"):
        load_caption_dataset(p)


def test_empty_or_missing_files(tmp_path):
    with pytest.raises(ValueError, match="no captions"):
        read_captions(_write(tmp_path / "e.tsv", "\n\n"))
    with pytest.raises(FileNotFoundError):
        read_captions(tmp_path / "nope.tsv")
    with pytest.raises(ValueError, match=r"line 2: cannot decode"):
        read_captions(_write(tmp_path / "bin.tsv", b"a.png\tok\n\xff\xfe\n", "wb"))


# -- datasets ---------------------------------------------------------------------------------------

def test_write_and_load_a_shapes_dataset(tmp_path):
    path = write_shapes_dataset(tmp_path / "shapes", 6, size=16, seed=3)
    assert path == str(tmp_path / "shapes" / "captions.tsv")
    assert len(open(path).read().splitlines()) == 12                  # two captions per image
    data = load_caption_dataset(path)                                 # images/ next to the file
    X, caps, _ = make_shapes(6, size=16, seed=3)
    assert data.images.shape == (6, 3, 16, 16) and data.names[0] == "00000.png"
    assert data.captions == caps
    np.testing.assert_allclose(data.images, X, atol=1 / 255 + 1e-6)  # PNG keeps 8 bits
    assert load_caption_dataset(path, size=8, mode="L").images.shape == (6, 1, 8, 8)
    train, val = data.split(0.34, seed=0)
    assert len(train) == 4 and len(val) == 2 and not set(train.names) & set(val.names)
    vocab = build_caption_vocab(data)
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert {"circle", "square", "triangle"} & set(vocab.tokens)


def test_images_of_different_sizes_need_a_size(tmp_path):
    from PIL import Image
    d = tmp_path / "images"
    d.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "a.png")
    Image.fromarray(np.zeros((10, 8, 3), np.uint8)).save(d / "b.png")
    p = write_captions(str(tmp_path / "c.tsv"), {"a.png": ["x"], "b.png": ["y"]})
    with pytest.raises(ValueError, match="pass size"):
        load_caption_dataset(p)
    assert load_caption_dataset(p, size=8).images.shape == (2, 3, 8, 8)


def test_caption_data_checks():
    with pytest.raises(ValueError, match="caption lists"):
        CaptionData(np.zeros((2, 3, 8, 8)), ["a", "b"], [["x"]])
    with pytest.raises(ValueError, match=r"\(M, C, H, W\)"):
        CaptionData(np.zeros((2, 8, 8)), ["a", "b"], [["x"], ["y"]])


# -- the synthetic shapes ---------------------------------------------------------------------------

def _obj(shape, colour, row, col):
    return {"shape": shape, "colour": colour, "row": row, "col": col, "dy": 0.0, "dx": 0.0,
            "scale": 1.0}


def test_captions_describe_the_layout():
    one = [_obj("circle", "red", 0, 0)]
    assert describe(one) == ["a red circle in the top left", "a red circle"]
    assert describe([_obj("square", "blue", 1, 1)])[0] == "a blue square in the middle"
    two = [_obj("circle", "red", 0, 1), _obj("square", "blue", 2, 0)]
    assert describe(two) == ["a red circle above a blue square", "a blue square below a red circle"]
    three = [_obj("circle", "red", 0, 0), _obj("square", "blue", 0, 2), _obj("triangle", "green", 1, 1)]
    assert describe(three) == [
        "a red circle to the left of a blue square above a green triangle",
        "a green triangle below a blue square to the right of a red circle"]


def test_rendering_puts_the_colour_in_the_cell():
    img = render_scene([_obj("square", "red", 2, 2), _obj("circle", "blue", 0, 0)], size=24, noise=0)
    assert img.shape == (3, 24, 24) and img.dtype == np.float32
    assert img[0, 20, 20] > 0.8 and img[2, 20, 20] < 0.3              # red at the bottom right
    assert img[2, 4, 4] > 0.8 and img[0, 4, 4] < 0.3                  # blue at the top left
    assert img[:, 12, 12].max() == 0.0                                # the empty middle stays dark


def test_make_shapes_is_seeded_and_varied():
    X, caps, scenes = make_shapes(50, size=24, seed=7)
    X2, caps2, _ = make_shapes(50, size=24, seed=7)
    np.testing.assert_array_equal(X, X2)
    assert caps == caps2 and X.shape == (50, 3, 24, 24)
    assert {len(s) for s in scenes} == {1, 2, 3}
    assert all(len(c) == 2 for c in caps)
    words = {w for cs in caps for c in cs for w in c.split()}
    assert {"red", "green", "blue", "yellow", "circle", "square", "triangle", "above",
            "below"} <= words
    with pytest.raises(ValueError, match="max_objects"):
        make_shapes(3, max_objects=4)
