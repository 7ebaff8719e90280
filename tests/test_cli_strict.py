"""Bad command lines: every option parsed strictly, data that does not fit the model, broken
checkpoints and empty data. Each must exit non-zero with ONE line on stderr that names the option
or the file, and no traceback (``chainrule --debug`` shows it instead).

``CASES`` is a table (name, argv, words the error line must contain); ``materialize`` writes the
files it refers to ({csv}, {run}, ...), so the same table can be run against another checkout.
"""
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.data import ArrayDataset, DataLoader
from chainrule.models import mlp
from chainrule.train import Trainer
from cli_helpers import run

# -- the table --------------------------------------------------------------------------------------

T = ["train", "--no-progress"]
TC = ["train-char", "{txt}", "--out", "{tmp}/char"]
S = ["sentiment", "{tsv}"]

CLI_MISUSE = [
    ("hidden with an empty item", T + ["--hidden", "256,,128"], ["--hidden", "256,,128"]),
    ("hidden with a trailing comma", T + ["--hidden", "256,"], ["--hidden"]),
    ("hidden of commas only", T + ["--hidden", ","], ["--hidden"]),
    ("hidden negative", T + ["--hidden", "-5"], ["--hidden"]),
    ("epochs negative", T + ["--epochs", "-1"], ["--epochs"]),
    ("batch size negative", T + ["--batch-size", "-3"], ["--batch-size"]),
    ("lr nan", T + ["--lr", "nan"], ["--lr", "nan"]),
    ("lr inf", T + ["--lr", "inf"], ["--lr", "inf"]),
    ("lr -inf", T + ["--lr=-inf"], ["--lr"]),
    ("lr negative", T + ["--lr=-0.1"], ["--lr"]),
    ("lr zero", T + ["--lr", "0"], ["--lr"]),
    ("momentum nan", T + ["--momentum", "nan"], ["--momentum"]),
    ("momentum negative", T + ["--momentum=-0.5"], ["--momentum"]),
    ("weight decay inf", T + ["--weight-decay", "inf"], ["--weight-decay"]),
    ("weight decay negative", T + ["--weight-decay=-1e-4"], ["--weight-decay"]),
    ("dropout nan", T + ["--dropout", "nan"], ["--dropout"]),
    ("dropout above 1", T + ["--dropout", "1.5"], ["--dropout"]),
    ("dropout negative", T + ["--dropout=-0.1"], ["--dropout"]),
    ("test fraction nan", T + ["--test-fraction", "nan"], ["--test-fraction"]),
    ("val fraction inf", T + ["--val-fraction", "inf"], ["--val-fraction"]),
    ("val fraction zero", T + ["--val-fraction", "0"], ["--val-fraction"]),
    ("seed negative", T + ["--seed=-1"], ["--seed"]),
    ("seed not an integer", T + ["--seed", "1.5"], ["--seed"]),
    ("seed too large", T + ["--seed", str(2 ** 40)], ["--seed"]),
    ("image size zero", T + ["--image-size", "0"], ["--image-size"]),
    ("early stopping zero", T + ["--early-stopping", "0"], ["--early-stopping"]),
    ("channels with an empty item", T + ["--model", "lenet", "--channels", "6,,16"], ["--channels"]),
    ("channels zero", T + ["--model", "lenet", "--channels", "0,16"], ["--channels"]),
    ("threads zero", ["--threads", "0", "train"], ["--threads"]),
    ("config lr nan", T + ["--config", "{cfg_nan}"], ["cfg_nan.toml", "'lr'"]),
    ("config epochs negative", T + ["--config", "{cfg_neg}"], ["cfg_neg.toml", "'epochs'"]),
    ("config hidden with a zero", T + ["--config", "{cfg_zero}"], ["cfg_zero.toml", "'hidden'"]),
    ("config hidden with an empty item", T + ["--config", "{cfg_empty}"],
     ["cfg_empty.toml", "'hidden'"]),
    ("resume with another lr", T + ["--resume", "{run}", "--lr", "0.5"],
     ["--lr 0.5", "{run}", "--lr 0.1"]),
    ("resume with another momentum", T + ["--resume", "{run}", "--momentum", "0"],
     ["--momentum 0.0", "{run}"]),
    ("resume with another optimizer", T + ["--resume", "{run}", "--optimizer", "adam"],
     ["--optimizer adam", "{run}"]),
    ("resume to fewer epochs than done", T + ["--resume", "{run}", "--epochs", "1"],
     ["--epochs 1", "has done 2 epochs"]),
    ("lr-find start lr nan", ["lr-find", "--start-lr", "nan"], ["--start-lr"]),
    ("lr-find end lr inf", ["lr-find", "--end-lr", "inf"], ["--end-lr"]),
    ("lr-find no steps", ["lr-find", "--num-steps", "0"], ["--num-steps"]),
    ("lr-find momentum inf", ["lr-find", "--momentum", "inf"], ["--momentum"]),
    ("evaluate batch size zero", ["evaluate", "{run}", "--batch-size", "0"], ["--batch-size"]),
    ("summary hidden with an empty item", ["summary", "--hidden", "8,,8"], ["--hidden"]),
    ("summary dropout inf", ["summary", "--dropout", "inf"], ["--dropout"]),
    ("train-char seq len zero", TC + ["--seq-len", "0"], ["--seq-len"]),
    ("train-char lr nan", TC + ["--lr", "nan"], ["--lr"]),
    ("train-char clip inf", TC + ["--clip", "inf"], ["--clip"]),
    ("train-char dropout 1", TC + ["--dropout", "1"], ["--dropout"]),
    ("train-char sample length negative", TC + ["--sample-length=-1"], ["--sample-length"]),
    ("train-char val fraction nan", TC + ["--val-fraction", "nan"], ["--val-fraction"]),
    ("train-char seed negative", TC + ["--seed=-3"], ["--seed"]),
    ("generate temperature nan", ["generate", "{tmp}", "--temperature", "nan"], ["--temperature"]),
    ("generate temperature inf", ["generate", "{tmp}", "--temperature", "inf"], ["--temperature"]),
    ("generate temperature zero", ["generate", "{tmp}", "--temperature", "0"], ["--temperature"]),
    ("generate length negative", ["generate", "{tmp}", "--length=-1"], ["--length"]),
    ("generate top-k negative", ["generate", "{tmp}", "--top-k=-1"], ["--top-k"]),
    ("sentiment min freq zero", S + ["--min-freq", "0"], ["--min-freq"]),
    ("sentiment val fraction nan", S + ["--val-fraction", "nan"], ["--val-fraction"]),
    ("sentiment lr inf", S + ["--lr", "inf"], ["--lr"]),
    ("sentiment max len zero", S + ["--max-len", "0"], ["--max-len"]),
    ("seq2seq train size zero", ["seq2seq", "--train-size", "0"], ["--train-size"]),
    ("seq2seq lr nan", ["seq2seq", "--lr", "nan"], ["--lr"]),
    ("seq2seq min len negative", ["seq2seq", "--min-len=-1"], ["--min-len"]),
    ("seq2seq clip inf", ["seq2seq", "--clip", "inf"], ["--clip"]),
    ("mnist1d-seq val fraction 1", ["mnist1d-seq", "--val-fraction", "1"], ["--val-fraction"]),
    ("mnist1d-seq epochs negative", ["mnist1d-seq", "--epochs=-2"], ["--epochs"]),
    ("mnist1d-seq lr nan", ["mnist1d-seq", "--lr", "nan"], ["--lr"]),
    ("gradient-flow max norm inf", ["gradient-flow", "--max-norm", "inf"], ["--max-norm"]),
    ("gradient-flow max norm nan", ["gradient-flow", "--max-norm", "nan"], ["--max-norm"]),
    ("gradient-flow dpi zero", ["gradient-flow", "--dpi", "0"], ["--dpi"]),
    ("similar k zero", ["similar", "{tmp}", "--checkpoint", "c", "--query", "q", "-k", "0"],
     ["-k/--top"]),
    ("transfer shots zero", ["transfer", "--shots", "0"], ["--shots"]),
    ("transfer lr nan", ["transfer", "--lr", "nan"], ["--lr"]),
    ("transfer lr scale inf", ["transfer", "--pretrained-lr-scale", "inf"],
     ["--pretrained-lr-scale"]),
    ("train-captioner size zero", ["train-captioner", "--size", "0"], ["--size"]),
    ("train-captioner val fraction nan", ["train-captioner", "--val-fraction", "nan"],
     ["--val-fraction"]),
    ("train-captioner lr inf", ["train-captioner", "--lr", "inf"], ["--lr"]),
    ("caption beam zero", ["caption", "x.png", "--checkpoint", "c", "--beam", "0"], ["--beam"]),
    ("caption max len negative", ["caption", "x.png", "--checkpoint", "c", "--max-len=-1"],
     ["--max-len"]),
]

BROKEN_DATA = [
    ("predict with a feature column too few", ["predict", "{run}", "--input", "{csv63}"],
     ["{csv63}", "63 feature columns", "the model in {run} expects 64"]),
    ("evaluate with a feature column too few", ["evaluate", "{run}", "--dataset", "{csv63}"],
     ["{csv63}", "63 feature columns", "expects 64"]),
    ("predict with a feature column too many", ["predict", "{run}", "--input", "{csv65}"],
     ["{csv65}", "65 feature columns", "expects 64"]),
    ("predict a missing file", ["predict", "{run}", "--input", "{tmp}/nope.csv"], ["nope.csv"]),
    ("predict an empty file", ["predict", "{run}", "--input", "{empty}"], ["{empty}", "empty"]),
    ("predict a ragged file", ["predict", "{run}", "--input", "{ragged}"], ["{ragged}", "line 3"]),
    ("predict a text cell", ["predict", "{run}", "--input", "{textcell}"],
     ["{textcell}", "not a number"]),
    ("predict a nan cell", ["predict", "{run}", "--input", "{nancell}"],
     ["{nancell}", "not finite"]),
    ("predict images with a tabular model", ["predict", "{run}", "--input", "{imgdir}"],
     ["{imgdir}", "folder of images"]),
    ("evaluate an unknown label", ["evaluate", "{run}", "--dataset", "{badlabel}"],
     ["{badlabel}", "'42'"]),
    ("train on a header without rows", T + ["--dataset", "{headeronly}"],
     ["{headeronly}", "no data rows"]),
    ("train on a binary file", T + ["--dataset", "{binary}"], ["{binary}"]),
    ("train on a single class", T + ["--dataset", "{oneclass}"], ["{oneclass}", "two classes"]),
]

BROKEN_CHECKPOINTS = [
    ("evaluate a truncated checkpoint", ["evaluate", "{trunc}"], ["{trunc}", "truncated"]),
    ("predict an empty checkpoint", ["predict", "{emptyckpt}", "--input", "{csv}"],
     ["{emptyckpt}", "empty"]),
    ("evaluate a text file as checkpoint", ["evaluate", "{txt}"], ["{txt}", "not a chainrule"]),
    ("evaluate a run directory without checkpoints", ["evaluate", "{tmp}/emptyrun"],
     ["emptyrun", "no checkpoint"]),
    ("resume from a truncated checkpoint", T + ["--resume", "{trunc}"], ["{trunc}"]),
    ("summary of a chainrule file that is no model", ["summary", "{notmodel}"],
     ["{notmodel}", "not a model checkpoint"]),
    ("generate from a model checkpoint", ["generate", "{run}/checkpoints/last.ckpt"],
     ["last.ckpt"]),
]

CASES = ([("CLI misuse",) + c for c in CLI_MISUSE] + [("broken data files",) + c for c in BROKEN_DATA]
         + [("broken checkpoints",) + c for c in BROKEN_CHECKPOINTS])


def materialize(tmp, train=None):
    """Write the files the table names under ``tmp``; {name: path}. ``train(argv)`` trains the
    small model {run} (default: in this process)."""
    from chainrule.data.datasets import digits
    tmp = str(tmp)
    X, y = digits()
    X = X.reshape(len(X), -1)[:300]
    y = y[:300]
    f = {"tmp": tmp}

    def write(name, text, mode="w"):
        path = os.path.join(tmp, name)
        with open(path, mode) as fh:
            fh.write(text)
        f[os.path.splitext(name)[0]] = path
        return path

    def table(cols):
        rows = [",".join([f"p{i}" for i in range(cols)] + ["label"])]
        rows += [",".join([f"{v:g}" for v in x[:cols]] + ["0"] * max(0, cols - 64) + [str(int(c))])
                 for x, c in zip(X, y)]
        return "\n".join(rows) + "\n"

    write("csv.csv", table(64))
    write("csv63.csv", table(63))
    write("csv65.csv", table(65))
    write("empty.csv", "")
    write("ragged.csv", "a,b,label\n1,2,0\n1,2\n")
    write("textcell.csv", "a,b,label\n1,2,0\n1,x,1\n")
    write("nancell.csv", "a,b,label\n1,2,0\n1,nan,1\n")
    write("badlabel.csv", table(64).replace(",0\n", ",42\n", 1))
    write("headeronly.csv", ",".join(f"p{i}" for i in range(64)) + ",label\n")
    write("binary.csv", bytes(range(256)) * 4, "wb")
    write("oneclass.csv", "a,b,label\n" + "".join(f"{i},{i % 3},7\n" for i in range(20)))
    write("txt.txt", "the quick brown fox jumps over the lazy dog\n" * 20)
    write("tsv.tsv", "".join(f"good movie {i}\tpos\nbad film {i}\tneg\n" for i in range(10)))
    write("cfg_nan.toml", "lr = nan\n")
    write("cfg_neg.toml", "epochs = -1\n")
    write("cfg_zero.toml", "hidden = [256, 0]\n")
    write("cfg_empty.toml", 'hidden = "256,,128"\n')
    os.makedirs(os.path.join(tmp, "emptyrun"), exist_ok=True)
    img = os.path.join(tmp, "imgdir", "a")
    os.makedirs(img, exist_ok=True)
    from PIL import Image
    Image.new("RGB", (8, 8)).save(os.path.join(img, "x.png"))
    f["imgdir"] = os.path.dirname(img)
    f["run"] = os.path.join(tmp, "run")
    argv = ["train", "--dataset", f["csv"], "--label-column", "label", "--epochs", "2",
            "--hidden", "16", "--out", f["run"], "--no-progress"]
    assert (train or main)(argv) == 0
    last = os.path.join(f["run"], "checkpoints", "last.ckpt")
    with open(last, "rb") as fh:
        blob = fh.read()
    write("trunc.ckpt", blob[: len(blob) // 2], "wb")
    write("emptyckpt.ckpt", b"", "wb")
    cr.save({"a": 1}, os.path.join(tmp, "notmodel.ckpt"))
    f["notmodel"] = os.path.join(tmp, "notmodel.ckpt")
    return f


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return materialize(tmp_path_factory.mktemp("strict"))


def _fill(items, files):
    return [str(a).format(**files) for a in items]


@pytest.mark.parametrize("category, name, argv, words", CASES, ids=[c[1] for c in CASES])
def test_a_bad_command_line_gives_one_clear_line(category, name, argv, words, files, capsys):
    code, out, err = run(_fill(argv, files), capsys)
    assert code not in (0, None), (name, out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and ": error: " in lines[0], err
    for w in _fill(words, files):
        assert w in lines[0], (w, lines[0])


def test_debug_shows_the_traceback(files, capsys):
    with pytest.raises(ValueError, match="63 feature columns"):
        main(["--debug", "predict", files["run"], "--input", files["csv63"]])
    capsys.readouterr()


def test_check_inputs_names_image_shape_and_channels():
    from chainrule.cli.train import check_inputs
    state = {"config": {"kind": "lenet5", "in_channels": 1, "input_size": 8}}
    with pytest.raises(ValueError, match=r"imgs holds images 3x8x8 .*the model in m.npz expects 1x8x8"):
        check_inputs(np.zeros((2, 3, 8, 8), np.float32), state, "imgs", "m.npz")
    with pytest.raises(ValueError, match=r"rows.csv has 63 feature columns, the model in m.npz "
                                         r"expects 64 \(images 1x8x8\)"):
        check_inputs(np.zeros((2, 63), np.float32), state, "rows.csv", "m.npz")
    check_inputs(np.zeros((2, 64), np.float32), state, "rows.csv", "m.npz")      # fits


# -- empty data is an error, not a no-op -------------------------------------------------------------

def _trainer():
    m = mlp(4, (8,), 3)
    return Trainer(m, cr.optim.SGD(m.parameters(), lr=0.1))


def test_fit_on_an_empty_set_is_an_error():
    X, y = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    with pytest.raises(ValueError, match="fit: the data is empty"):
        _trainer().fit((X, y), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"fit\(val_data\): the data is empty"):
        _trainer().fit((np.ones((8, 4), np.float32), np.zeros(8, np.int64)), epochs=1,
                       val_data=(X, y), progress=False)
    with pytest.raises(ValueError, match="evaluate: the data holds no examples"):
        _trainer().evaluate((X, y))


def test_fit_on_fewer_examples_than_a_batch_with_drop_last_is_an_error():
    data = DataLoader(ArrayDataset(np.ones((5, 4), np.float32), np.zeros(5, np.int64)),
                      batch_size=8, drop_last=True)
    t = _trainer()
    before = [p.data.copy() for p in t.model.parameters()]
    with pytest.raises(ValueError, match="5 examples, fewer than one batch of 8, and drop_last"):
        t.fit(data, epochs=3, progress=False)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, t.model.parameters()))
    assert t.history.epoch == []


def test_fit_on_data_that_yields_no_batch_is_an_error():
    with pytest.raises(ValueError, match="epoch 1 had no batches"):
        _trainer().fit(lambda epoch: [], epochs=2, progress=False)


def test_a_dtype_mismatch_on_integer_input_gives_advice_that_makes_sense():
    m = mlp(4, (8,), 3)
    with pytest.raises(TypeError) as e:
        m(cr.Tensor(np.zeros((2, 4), np.int64)))
    msg = str(e.value)
    assert "x.astype('float32')" in msg and ".to('int64')" not in msg, msg
    with pytest.raises(TypeError, match=r"\.to\('float64'\)"):           # floats: either way
        m(cr.Tensor(np.zeros((2, 4), np.float64)))
