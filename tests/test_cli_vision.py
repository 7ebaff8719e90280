"""The vision subcommands: similar, transfer, train-captioner, caption (tiny settings)."""
import json
import os
import shutil

import numpy as np
import pytest

from chainrule.cli import build_parser, main


def _digit_folder(root, n=12):
    """Digit images as PNG files (8x8 grayscale, ink white on black as in the dataset)."""
    from PIL import Image
    from chainrule.data.datasets import digits
    X, y = digits(images=True)
    os.makedirs(root, exist_ok=True)
    paths = []
    for i in range(n):
        p = os.path.join(root, f"d{i:02d}_{y[i]}.png")
        Image.fromarray(np.round(X[i, 0] * 255).astype(np.uint8), "L").save(p)
        paths.append(p)
    return paths


def test_the_commands_are_registered():
    sub = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices)
    assert {"similar", "transfer", "train-captioner", "caption"} <= set(sub.choices)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    d = tmp_path_factory.mktemp("transfer")
    argv = ["transfer", "--seeds", "1", "--shots", "2", "--pretrain-epochs", "2", "--epochs", "2",
            "--plot", str(d / "bars.png"), "--json", str(d / "res.json"), "--save", str(d / "pre.ckpt")]
    assert main(argv) == 0
    return d


def test_transfer_prints_the_table_and_writes_files(pretrained, capsys):
    res = json.loads((pretrained / "res.json").read_text())
    assert set(res["mean"]) >= {"scratch", "linear", "finetune"} and res["shots"] == 2
    assert (pretrained / "bars.png").read_bytes()[:4] == b"\x89PNG"
    assert (pretrained / "pre.ckpt").exists()


def test_transfer_output_lines(tmp_path, capsys):
    assert main(["transfer", "--seeds", "1", "--shots", "1", "--pretrain-epochs", "1",
                 "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "(a) from scratch" in out and "(b) linear classifier" in out
    for m in ("scratch", "linear", "finetune"):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{m}_accuracy="))
        assert 0.0 <= float(line.split("=")[1]) <= 1.0


def test_similar_ranks_a_copy_of_the_query_first(pretrained, tmp_path, capsys):
    folder = tmp_path / "imgs"
    paths = _digit_folder(str(folder))
    query = tmp_path / "query.png"
    shutil.copy(paths[5], query)
    assert main(["similar", str(folder), "--checkpoint", str(pretrained / "pre.ckpt"),
                 "--query", str(query), "-k", "3", "--clusters", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"query={query}") and "images=12" in out[0] and "dim=84" in out[0]
    rank1 = out[2].split()
    assert rank1[0] == "1" and float(rank1[1]) == pytest.approx(1.0, abs=1e-6)
    assert rank1[2] == os.path.basename(paths[5])
    assert len([ln for ln in out if ln.startswith("cluster ")]) == 2
    # the query inside the folder is not its own neighbour; --layer picks another layer
    assert main(["similar", str(folder), "--checkpoint", str(pretrained / "pre.ckpt"),
                 "--query", paths[5], "--layer", "6"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "images=11" in out[0] and "dim=64" in out[0]
    assert os.path.basename(paths[5]) not in "\n".join(out[2:])


def test_similar_with_an_mlp_from_chainrule_train(tmp_path, capsys):
    ckpt = tmp_path / "mlp.ckpt"
    assert main(["train", "--epochs", "1", "--no-progress", "--save", str(ckpt)]) == 0
    folder = tmp_path / "imgs"
    paths = _digit_folder(str(folder), n=6)
    capsys.readouterr()
    assert main(["similar", str(folder), "--checkpoint", str(ckpt), "--query", paths[0]]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "images=5" in out[0] and "dim=256" in out[0] and len(out) == 2 + 5


def test_similar_with_a_convnet_from_chainrule_train(tmp_path, capsys):
    """A LeNet checkpoint of 'chainrule train --model lenet --save' embeds images: the vector is
    the input of the last Linear (84 values), after the saved per-channel mean is subtracted."""
    ckpt = tmp_path / "lenet.ckpt"
    assert main(["train", "--model", "lenet", "--epochs", "1", "--no-progress", "--save", str(ckpt)]) == 0
    folder = tmp_path / "imgs"
    paths = _digit_folder(str(folder), n=6)
    query = tmp_path / "query.png"
    shutil.copy(paths[2], query)
    capsys.readouterr()
    assert main(["similar", str(folder), "--checkpoint", str(ckpt), "--query", str(query)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "images=6" in out[0] and "dim=84" in out[0]
    rank1 = out[2].split()
    assert float(rank1[1]) == pytest.approx(1.0, abs=1e-6) and rank1[2] == os.path.basename(paths[2])


def test_similar_errors(tmp_path, capsys):
    import chainrule as cr
    bad = tmp_path / "x.ckpt"
    cr.save({"hello": 1}, str(bad))
    folder = tmp_path / "imgs"
    paths = _digit_folder(str(folder), n=2)
    assert main(["similar", str(folder), "--checkpoint", str(bad), "--query", paths[0]]) == 2
    assert "not a checkpoint of an image model" in capsys.readouterr().err
    assert main(["similar", str(folder), "--checkpoint", str(tmp_path / "none.ckpt"),
                 "--query", paths[0]]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_train_captioner_then_caption(tmp_path, capsys):
    ckpt = tmp_path / "cap.ckpt"
    data = tmp_path / "shapes"
    argv = ["train-captioner", "--synthetic", "30", "--write-synthetic", str(data), "--size", "16",
            "--epochs", "2", "--width", "4", "--hidden", "16", "--embed", "8", "--beam", "2",
            "--val-fraction", "0.2", "--no-progress", "--save", str(ckpt)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "train_images=24 val_images=6" in out
    bleu4 = float(out.strip().splitlines()[-1].split("=")[1])
    assert out.strip().splitlines()[-1].startswith("bleu4=") and 0.0 <= bleu4 <= 1.0
    assert (data / "captions.tsv").exists() and ckpt.exists()
    image = data / "images" / "00000.png"
    assert main(["caption", str(image), "--checkpoint", str(ckpt), "--max-len", "6"]) == 0
    caption = capsys.readouterr().out.strip()
    from chainrule.applications.captioning import load_captioner
    _, vocab, _ = load_captioner(str(ckpt))
    assert len(caption.split()) <= 6 and all(w in vocab for w in caption.split())
    other = data / "images" / "00001.png"
    assert main(["caption", str(image), str(other), "--checkpoint", str(ckpt), "--beam", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split("\t")[0] for ln in lines] == [str(image), str(other)]
    # the written set trains from its captions file, and `similar` uses the captioner's encoder
    assert main(["train-captioner", "--data", str(data / "captions.tsv"), "--size", "16",
                 "--epochs", "1", "--width", "4", "--hidden", "8", "--embed", "4", "--beam", "1",
                 "--no-progress", "--save", str(tmp_path / "c2.ckpt")]) == 0
    capsys.readouterr()
    assert main(["similar", str(data / "images"), "--checkpoint", str(ckpt), "--query",
                 str(image), "-k", "2"]) == 0
    assert "dim=128" in capsys.readouterr().out


def test_captioning_errors_name_the_line(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    caps = tmp_path / "captions.tsv"
    caps.write_text("a.png\tone\n")
    assert main(["train-captioner", "--data", str(caps), "--no-progress"]) == 2
    assert "line 1: image 'a.png' not found" in capsys.readouterr().err
    caps.write_text("a.png a caption without a tab\n")
    assert main(["train-captioner", "--data", str(caps), "--no-progress"]) == 2
    assert "captions.tsv, line 1: expected 'image_name<TAB>caption'" in capsys.readouterr().err
    assert main(["caption", str(caps), "--checkpoint", str(tmp_path / "nope.ckpt")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["train-captioner", "--size", "20", "--no-progress"]) == 2
    assert "multiple of 8" in capsys.readouterr().err
