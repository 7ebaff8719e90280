"""What every family of ``chainrule`` subcommands uses: the help formatter, strict argument
types, checkpoint-path resolution, progress bars and per-epoch lines, history and CSV writing.

The argument types each parse a number and check its range, with one clear message (argparse
prints it as 'argument --epochs: expected a positive integer, got 0'); floats must be finite
(nan and inf are refused everywhere: no option means anything with them)."""
import argparse
import csv
import inspect
import math
import os
import sys

from ..io import check_output_dir, check_output_file              # noqa: F401 (re-exported)
from ..train.experiment import checkpoint_path     # RUN_DIR -> its best (or last) checkpoint

__all__ = ["number", "positive_int", "nonneg_int", "seed", "positive_float", "nonneg_float",
           "finite_float", "fraction", "unit_interval", "probability", "size_list", "Parser",
           "check_output_file", "check_output_dir", "HelpFormatter", "with_default", "defaults_of", "checkpoint_path", "named_checkpoint", "column",
           "progress_bar", "epoch_printer", "write_history", "csv_cell"]


def number(kind, ok, what):
    """An argparse ``type=`` that converts with ``kind`` (int/float) and accepts values with ``ok``;
    a float must also be finite."""
    def parse(text):
        try:
            v = kind(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (kind is float and not math.isfinite(v)) or not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return v
    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = number(int, lambda v: v >= 1, "a positive integer")
nonneg_int = number(int, lambda v: v >= 0, "a non-negative integer")
seed = number(int, lambda v: 0 <= v < 2 ** 32, "a seed in [0, 2**32)")
positive_float = number(float, lambda v: v > 0, "a positive number")
nonneg_float = number(float, lambda v: v >= 0, "a non-negative number")
finite_float = number(float, lambda v: True, "a finite number")
fraction = number(float, lambda v: 0 < v < 1, "a fraction between 0 and 1")
unit_interval = number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
probability = number(float, lambda v: 0 <= v <= 1, "a probability in [0, 1]")


def size_list(option, example="256,128"):
    """An argparse ``type=`` for comma-separated positive sizes ('256,128' -> (256, 128)); an
    empty item ('256,,128', '256,') is refused, not skipped: it is a typo, not a layer less."""
    def parse(text):
        items = [s.strip() for s in str(text).split(",")]
        if any(not s for s in items):
            raise argparse.ArgumentTypeError(f"{option} has an empty size in {text!r}; give sizes "
                                             f"like {example}")
        try:
            sizes = tuple(int(s) for s in items)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} expects sizes like {example}, "
                                             f"got {text!r}") from None
        if any(v <= 0 for v in sizes):
            raise argparse.ArgumentTypeError(f"{option} sizes must be positive, got {text!r}")
        return sizes
    parse.__name__ = "sizes"
    return parse


class Parser(argparse.ArgumentParser):
    """argparse's parser with its errors on one line: 'chainrule train: error: argument --epochs:
    expected a positive integer, got 0 (see chainrule train --help)', no usage block above it."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, but not for on/off flags ('--no-progress (default: True)' reads backwards) or
    options whose default is None (their help says what happens, see ``with_default``)."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)


def with_default(help, value):
    """``help`` ending in '(default: VALUE)' as HelpFormatter writes it, for an option whose
    argparse default is None because its default lives elsewhere (a recipe table)."""
    shown = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value
    return f"{help} (default: {shown})"


def defaults_of(fn, **renamed):
    """The keyword defaults of the library function ``fn``, for options that default to what the
    function does (one place for each default); ``renamed``: option dest="parameter name"."""
    d = {n: p.default for n, p in inspect.signature(fn).parameters.items()
         if p.default is not inspect.Parameter.empty}
    return {**d, **{dest: d[param] for dest, param in renamed.items()}}


def named_checkpoint(target, name):
    """``target`` if it is a file, else the file ``name`` in the directory ``target``."""
    if os.path.isdir(target):
        path = os.path.join(target, name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{target} holds no {name}")
        return path
    if not os.path.exists(target):
        raise FileNotFoundError(f"no such checkpoint: {target}")
    return target


def column(spec):
    """A column given on the command line: its index if it is a number, else its name (or None)."""
    if spec is None:
        return None
    return int(spec) if spec.lstrip("-").isdigit() else spec


def progress_bar(total, desc, enabled):
    """A tqdm bar on stderr, or None when disabled or tqdm is missing."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, unit="chunk", file=sys.stderr)


def epoch_printer(epochs):
    """A callback printing one line per epoch: loss, accuracy (and validation), time."""
    from ..train import LambdaCallback

    def show(epoch, logs):
        parts = [f"{k}={logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy")
                 if k in logs]
        print(f"epoch {epoch + 1}/{epochs}  " + "  ".join(parts) + f"  ({logs.get('time', 0):.1f} s)",
              flush=True)
    return LambdaCallback(on_epoch_end=show)


def write_history(path, history):
    """history.csv: one row per epoch, a column per non-empty list of ``history``."""
    keys = [k for k in history if history[k]]
    n = max(len(history[k]) for k in keys)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch"] + keys)
        for i in range(n):
            w.writerow([i + 1] + [f"{history[k][i]:.6g}" for k in keys])


def csv_cell(s):
    """``s`` as one CSV cell (quoted when it holds a comma, a quote or a newline)."""
    s = str(s)
    return '"' + s.replace('"', '""') + '"' if any(ch in s for ch in ',"\n') else s
