"""The CLI as a package: the commands `chainrule --help` lists, the import rule between its
modules (families import cli.common only), and the one table of `chainrule train` defaults."""
import argparse
import ast
import os
import re
import subprocess
import sys

import pytest

import chainrule
from chainrule.cli import build_parser, parse_args
from chainrule.cli.common import HelpFormatter, with_default
from chainrule.train import recipes
from chainrule.train.recipes import DEFAULTS, train_settings
from cli_helpers import run

CLI_DIR = os.path.join(os.path.dirname(chainrule.__file__), "cli")
FAMILIES = {"train", "sequences", "vision"}
# `chainrule --help` before the CLI became a package (chainrule/cli.py and its four siblings)
COMMANDS = ["train", "evaluate", "predict", "summary", "report", "lr-find", "train-char", "generate",
            "sentiment (train-sentiment)", "seq2seq", "mnist1d-seq", "gradient-flow", "similar",
            "transfer", "train-captioner", "caption"]


def listed_commands(help_text):
    """The command names of the COMMAND section of `chainrule --help`, in order."""
    section = help_text.split("  COMMAND\n", 1)[1].split("\n\n", 1)[0]
    return [m.group(1).strip() for m in re.finditer(r"^    (\S+(?: \([^)]*\))?)", section, re.M)]


def test_help_lists_the_same_commands_as_before(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and out.startswith("usage: chainrule [-h] [--version] [--threads N] [--debug] COMMAND")
    assert listed_commands(out) == COMMANDS


def test_every_subcommand_keeps_its_prog_name():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        assert parser.prog == f"chainrule {'sentiment' if name == 'train-sentiment' else name}"
        assert parser.formatter_class is HelpFormatter


def test_python_dash_m_chainrule_is_the_command():
    proc = subprocess.run([sys.executable, "-m", "chainrule", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and listed_commands(proc.stdout) == COMMANDS


def _imports(path, package):
    """The chainrule modules a file imports (relative imports resolved against ``package``)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("chainrule")}


def test_family_modules_import_common_only():
    names = sorted(f[:-3] for f in os.listdir(CLI_DIR) if f.endswith(".py"))
    assert FAMILIES | {"__init__", "common"} <= set(names)
    for name in names:
        if name in ("__init__", "__main__"):
            continue
        imported = _imports(os.path.join(CLI_DIR, name + ".py"), "chainrule.cli")
        cli = {m for m in imported if m == "chainrule.cli" or m.startswith("chainrule.cli.")}
        allowed = {"chainrule.cli.common"} | {f"chainrule.cli.common.{n}" for n in dir(
            __import__("chainrule.cli.common", fromlist=["x"]))}
        assert cli <= allowed, f"chainrule/cli/{name}.py imports {sorted(cli - allowed)}"


def test_the_checker_sees_a_forbidden_import(tmp_path):
    # the rule above must fail on a family module that imports the package or a sibling
    bad = tmp_path / "bad.py"
    bad.write_text("from . import train\nfrom .. import cli\nfrom .common import fraction\n")
    imported = _imports(str(bad), "chainrule.cli")
    assert {"chainrule.cli.train", "chainrule.cli"} <= imported


def test_library_modules_do_not_import_the_cli():
    root = os.path.dirname(chainrule.__file__)
    for d, _, files in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel.split(os.sep)[0] == "cli":
            continue
        package = "chainrule" if rel == "." else "chainrule." + rel.replace(os.sep, ".")
        for f in files:
            if f.endswith(".py") and f != "__main__.py":
                imported = _imports(os.path.join(d, f), package)
                assert not any(m == "chainrule.cli" or m.startswith("chainrule.cli.")
                               for m in imported), os.path.join(d, f)


# -- one place for each default ---------------------------------------------------------------------

def test_train_options_are_unset_until_the_recipe_fills_them():
    t = argparse.ArgumentParser(add_help=False)
    from chainrule.cli.train import _add_train_options
    _add_train_options(t)
    raw = vars(t.parse_args([]))
    assert {k: raw[k] for k in DEFAULTS if k in raw} == {k: None for k in DEFAULTS if k in raw}
    _, args, _ = parse_args(["train"])
    assert {k: getattr(args, k) for k in DEFAULTS} == recipes.recipe("mlp", "digits")


def test_help_shows_the_recipe_table_defaults(capsys, monkeypatch):
    monkeypatch.setitem(DEFAULTS, "epochs", 7)
    monkeypatch.setitem(recipes.OPTIMIZER_LR, "sgd", 0.25)
    code, out, _ = run(["train", "--help"], capsys)
    text = " ".join(out.split())
    assert "(with --resume: the run's total) (default: 7)" in text
    assert "learning rate (default: 0.25 for sgd, 0.001 for adam/adamw/rmsprop)" in text
    _, args, _ = parse_args(["train"])
    assert args.epochs == 7
    assert with_default("sizes", (256, 128)) == "sizes (default: 256,128)"


def test_settings_resolve_in_layers():
    # the command line over the first layer over the second over the recipe; None is "not set"
    s = train_settings({"epochs": 5, "lr": None}, {"epochs": 9, "model": "lenet", "lr": 0.3},
                       epochs=None, batch_size=8)
    assert (s["epochs"], s["batch_size"], s["lr"], s["model"]) == (5, 8, 0.3, "lenet")
    assert s["channels"] == [64, 128] and s["augment"] is True         # lenet on digits
    s = train_settings(model="lenet", dataset="mnist")
    assert s["channels"] is None and s["augment"] is False and s["epochs"] == 20
    assert recipes.learning_rate(train_settings(optimizer="adam")) == recipes.OPTIMIZER_LR["adam"]
    assert recipes.learning_rate(train_settings(optimizer="adam", model="vgg")) == 0.05
    with pytest.raises(ValueError, match="unknown training setting 'epoch'"):
        train_settings(epoch=3)
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        train_settings(model="resnet")


def test_a_resumed_run_keeps_its_settings_under_the_command_line(tmp_path, capsys):
    d = tmp_path / "run"
    code, _, err = run(["train", "--epochs", "1", "--hidden", "16", "--optimizer", "adam",
                        "--no-progress", "--out", str(d)], capsys)
    assert code == 0, err
    _, args, state = parse_args(["train", "--resume", str(d), "--epochs", "2"])
    assert state["epoch"] == 1 and args.out == str(d)
    assert (args.epochs, args.hidden, args.optimizer, args.lr) == (2, (16,), "adam", None)


# -- the handlers are thin: the library does the same work from Python -------------------------------

def test_train_run_from_python_is_what_the_command_does(capsys):
    from chainrule.train.experiment import train_run
    code, out, err = run(["train", "--epochs", "2", "--hidden", "16", "--no-progress"], capsys)
    assert code == 0, err
    res = train_run(train_settings(epochs=2, hidden=(16,), progress=False), log=None)
    assert capsys.readouterr().out == ""                                  # log=None: silent
    assert out.strip().splitlines()[-1] == f"test_accuracy={res.test['accuracy']:.4f}"
    assert res.config == {"kind": "mlp", "in_features": 64, "hidden": [16], "out_features": 10,
                          "activation": "relu", "dropout": 0.0}
    assert len(res.trainer.history.epoch) == 2 and res.report is None


def test_a_convnet_recipe_builds_from_settings():
    from chainrule.data.prepare import prepare_data
    from chainrule.models.registry import build_model, model_config, model_input_shape
    s = train_settings(model="lenet")
    d = prepare_data(s, images=True)
    assert d["Xtr"].shape[1:] == (1, 8, 8) and d["channel_mean"].shape == (1,)
    config = model_config(s, 64, d["n_classes"], d["image_shape"])
    assert config["kind"] == "lenet5" and config["channels"] == [64, 128] and config["batch_norm"]
    assert model_input_shape(config) == (1, 8, 8)
    assert build_model(config)(d["Xtr"][:2]).shape == (2, 10)
    with pytest.raises(ValueError, match="--model alexnet uses local response normalisation"):
        model_config(train_settings(model="alexnet", batch_norm=True), 64, 10, [1, 8, 8])
