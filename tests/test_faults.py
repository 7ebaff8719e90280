"""Faults under load: `chainrule train --out` killed with SIGKILL at random moments, a full disk
during a save, output paths that cannot be written, and the temporary files a kill leaves behind.

Each run is small (digits as a CSV file, so no scikit-learn import in the child; a 16-unit MLP) and
every wait is bounded. A tiny tmpfs stands for the full disk and a read-only mount for a read-only
folder when the tests run as root and may mount; otherwise a monkeypatched write raises ENOSPC and
chmod makes a folder unwritable.
"""
import contextlib
import errno
import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule.io import remove_stale_temps
from chainrule.models import mlp
from chainrule.train.checkpoint import load_checkpoint

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
EPOCHS = 150
SMALL = ["--hidden", "16", "--batch-size", "256", "--no-progress"]


def chainrule(*args, timeout=60, cwd=None):
    """(exit status, stdout, stderr) of ``python -m chainrule ARGS`` in a child process."""
    p = subprocess.run([sys.executable, "-m", "chainrule", "--threads", "1", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout, env=ENV, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def one_error_line(err, *words):
    """The stderr of a failed command: one line, 'chainrule CMD: error: ...', naming ``words``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and ": error: " in lines[0], err
    for w in words:
        assert str(w) in lines[0], (w, err)
    return lines[0]


@pytest.fixture(scope="module")
def digits_csv(tmp_path_factory):
    """The digits as a CSV file (64 pixel columns, then the label)."""
    from chainrule.data.datasets import digits
    X, y = digits()
    path = tmp_path_factory.mktemp("data") / "digits.csv"
    rows = [",".join([f"p{i}" for i in range(64)] + ["label"])]
    rows += [",".join([f"{v:g}" for v in x] + [str(int(c))]) for x, c in zip(X.reshape(len(X), -1), y)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _can_mount():
    if os.geteuid() != 0:
        return False
    probe = f"/tmp/.chainrule-mount-probe-{os.getpid()}"
    os.makedirs(probe, exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", probe], check=True)
        return ok
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(probe)


CAN_MOUNT = _can_mount()


@contextlib.contextmanager
def mounted(path, options):
    """A tmpfs at ``path`` with ``options`` ("size=256k", "ro"), unmounted afterwards."""
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@contextlib.contextmanager
def read_only_folder(path):
    """A folder nothing can be written in: a read-only mount as root, else mode 0555."""
    if CAN_MOUNT:
        with mounted(path, "ro,size=64k"):
            yield path
        return
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o555)
    try:
        yield path
    finally:
        os.chmod(path, 0o755)


def temps(*dirs):
    """The temporary files of atomic writes in ``dirs``."""
    return sorted(p for d in dirs for p in glob.glob(os.path.join(str(d), ".*.tmp"))
                  + glob.glob(os.path.join(str(d), "*.tmp")))


# -- SIGKILL at random moments ----------------------------------------------------------------------

def _kill_at_random(cmd, rng, after_start):
    """Start ``cmd``, SIGKILL it at a random moment (None if it finished first): mostly while it
    trains and checkpoints (counted from its 'parameters=' line), sometimes anywhere (start-up,
    resume, the end)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        if after_start:
            delay = rng.uniform(0.0, 0.9)
        else:
            deadline = time.monotonic() + 30
            for line in p.stdout:                       # the run's lines up to training
                if line.startswith("parameters=") or time.monotonic() > deadline:
                    break
            delay = rng.uniform(0.0, 0.25)
        try:
            p.wait(timeout=delay)
            return None
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
            return delay
    finally:
        p.stdout.close()
        p.stderr.close()
        if p.poll() is None:
            p.kill()
            p.wait()


def test_sigkill_at_random_moments_leaves_a_loadable_checkpoint_and_resume_finishes(tmp_path,
                                                                                     digits_csv):
    settings = ["--dataset", digits_csv, "--label-column", "label", "--epochs", EPOCHS] + SMALL
    ref = tmp_path / "ref.npz"                          # the run never interrupted
    code, _, err = chainrule("train", *settings, "--save", ref)
    assert code == 0, err

    run = tmp_path / "run"
    last, best = run / "checkpoints" / "last.ckpt", run / "checkpoints" / "best.ckpt"
    base = [sys.executable, "-m", "chainrule", "--threads", "1", "train"]
    rng = random.Random(12)
    done, kills, torn = 0, 0, 0
    for i in range(20):
        cmd = base + (["--resume", str(run), "--no-progress"] if last.exists()
                      else list(map(str, settings)) + ["--out", str(run)])
        if _kill_at_random(cmd, rng, after_start=i % 4 == 3) is not None:
            kills += 1
        torn += len(temps(run, run / "checkpoints"))
        for p in (last, best):                          # whatever the moment: whole or absent
            if p.exists():
                state = load_checkpoint(p, resumable=True)
                assert 1 <= state["epoch"] <= EPOCHS
        if last.exists():
            epoch = load_checkpoint(last)["epoch"]
            assert epoch >= done, "a checkpoint went back in time"
            done = epoch
        if (run / "config.json").exists():
            json.loads((run / "config.json").read_text())
    assert kills >= 15, f"only {kills} of 20 runs were killed"

    code, out, err = chainrule("train", "--resume", run, "--no-progress")
    assert code == 0, err
    assert "test_accuracy=" in out
    state = load_checkpoint(last)
    assert state["epoch"] == EPOCHS
    want = cr.load(str(ref))["model"]
    for k, v in want.items():                           # bit for bit the uninterrupted run
        np.testing.assert_array_equal(state["model"][k], v, err_msg=k)
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert len(rows) == EPOCHS + 1
    assert temps(run, run / "checkpoints") == [], "temporary files of killed writes remain"
    print(f"{kills} kills, {torn} torn temporary files seen after kills, all cleaned up")


def test_a_temporary_file_of_a_killed_save_is_removed_by_the_next_save_and_by_resume(tmp_path):
    path = tmp_path / "last.ckpt"
    cr.save({"epoch": 1}, str(path))
    # what a writer killed mid-save leaves: a torn temp file with a dead process id
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    torn = tmp_path / f".last.ckpt.{dead.pid}.abcd1234.tmp"
    torn.write_bytes(b"PK\x03\x04 torn")
    older = tmp_path / ".last.ckpt.k2j4h6g8.tmp"       # the name without a process id
    older.write_bytes(b"PK")
    alive = tmp_path / f".last.ckpt.{os.getppid()}.zzzz9999.tmp"     # a writer still at work
    alive.write_bytes(b"PK")
    cr.save({"epoch": 2}, str(path))
    assert not torn.exists() and not older.exists() and alive.exists()
    assert cr.load(str(path))["epoch"] == 2
    # resume cleans the checkpoint folder of every file's leftovers
    other = tmp_path / f".best.ckpt.{dead.pid}.abcd1234.tmp"
    other.write_bytes(b"PK")
    assert remove_stale_temps(tmp_path) == [str(other)]
    alive.unlink()


def test_resume_removes_the_temporary_files_a_kill_left(tmp_path, digits_csv):
    run = tmp_path / "run"
    code, _, err = chainrule("train", "--dataset", digits_csv, "--label-column", "label",
                             "--epochs", 2, *SMALL, "--out", run)
    assert code == 0, err
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = [run / "checkpoints" / f".last.ckpt.{dead.pid}.a1b2c3d4.tmp",
            run / "checkpoints" / f".best.ckpt.{dead.pid}.a1b2c3d4.tmp",
            run / f".config.json.{dead.pid}.a1b2c3d4.tmp", run / "history.csv.tmp"]
    for p in left:
        p.write_bytes(b"torn")
    code, out, err = chainrule("train", "--resume", run, "--epochs", 3, "--no-progress")
    assert code == 0, err
    assert not any(p.exists() for p in left)
    assert temps(run, run / "checkpoints") == []
    assert load_checkpoint(run / "checkpoints" / "last.ckpt")["epoch"] == 3


# -- a full disk ------------------------------------------------------------------------------------

def _fill(folder, leave):
    """Fill the file system of ``folder`` up to ``leave`` free bytes with one file."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    with open(os.path.join(folder, "filler"), "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def _no_space(monkeypatch, after=0):
    """Make the checkpoint writer hit ENOSPC from its (after+1)-th array on."""
    import chainrule.io as io
    real, n = io._write_entry, {"calls": 0}

    def write_entry(zf, name, array):
        n["calls"] += 1
        if n["calls"] > after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(zf, name, array)
    monkeypatch.setattr(io, "_write_entry", write_entry)


def test_a_full_disk_during_a_save_names_the_file_and_keeps_the_previous_checkpoint(tmp_path,
                                                                                    monkeypatch):
    model = mlp(64, (128,), 10)
    first = {"model": model.state_dict(), "epoch": 1}
    second = {"model": {k: v + 1 for k, v in model.state_dict().items()}, "epoch": 2}
    folder = tmp_path / "disk"
    with (mounted(folder, "size=256k") if CAN_MOUNT else contextlib.nullcontext(folder)):
        os.makedirs(folder, exist_ok=True)
        path = folder / "last.ckpt"
        cr.save(first, str(path))
        if CAN_MOUNT:
            _fill(folder, leave=8192)                   # less than one more checkpoint
        else:
            _no_space(monkeypatch)
        with pytest.raises(OSError) as e:
            cr.save(second, str(path))
        assert e.value.errno == errno.ENOSPC
        msg = str(e.value)
        assert "last.ckpt" in msg and "No space left on device" in msg, msg
        assert "previous file is unchanged" in msg
        back = cr.load(str(path))
        assert back["epoch"] == 1
        for k, v in first["model"].items():
            np.testing.assert_array_equal(back["model"][k], np.asarray(v))
        assert temps(folder) == []


def test_train_on_a_full_disk_fails_with_one_line_and_the_checkpoint_intact(tmp_path, digits_csv):
    settings = ["--dataset", digits_csv, "--label-column", "label", *SMALL]
    folder = tmp_path / "disk"
    with (mounted(folder, "size=1m") if CAN_MOUNT else contextlib.nullcontext(folder)):
        os.makedirs(folder, exist_ok=True)
        run = folder / "run"
        code, _, err = chainrule("train", *settings, "--epochs", 1, "--out", run)
        assert code == 0, err
        if CAN_MOUNT:
            _fill(folder, leave=12 * 1024)          # room for the small files, not a checkpoint
            code, out, err = chainrule("train", "--resume", run, "--epochs", 3, "--no-progress")
        else:                                       # a child process cannot be monkeypatched
            code, out, err = _in_process_full_disk(run)
        assert code == 2, out
        line = one_error_line(err, "No space left on device")
        assert "last.ckpt" in line or "best.ckpt" in line or ".json" in line or ".csv" in line
        assert load_checkpoint(run / "checkpoints" / "last.ckpt", resumable=True)["epoch"] == 1
        assert [p for p in temps(run, run / "checkpoints")
                if not p.endswith("history.csv.tmp")] == []


def _in_process_full_disk(run):
    """`chainrule train --resume RUN --epochs 3` in this process with every checkpoint write
    failing with ENOSPC: (status, stdout, stderr)."""
    import io as _io
    from unittest import mock
    from chainrule.cli import main
    out, err = _io.StringIO(), _io.StringIO()
    with mock.patch("chainrule.io._write_entry",
                    side_effect=OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"])
    return code, out.getvalue(), err.getvalue()


def test_full_disk_in_process_cli_names_the_checkpoint(tmp_path, digits_csv):
    """The monkeypatched write, whatever the user: the save of epoch 2 fails."""
    run = tmp_path / "run"
    code, _, err = chainrule("train", "--dataset", digits_csv, "--label-column", "label",
                             "--epochs", 1, *SMALL, "--out", run)
    assert code == 0, err
    code, out, err = _in_process_full_disk(run)
    assert code == 2
    line = one_error_line(err, "No space left on device", "last.ckpt",
                          "previous file is unchanged")
    assert line.startswith("chainrule train: error: ")
    assert load_checkpoint(run / "checkpoints" / "last.ckpt", resumable=True)["epoch"] == 1
    assert temps(run / "checkpoints") == []


# -- output paths that cannot be written: refused before any work -----------------------------------

def _bad_outputs(tmp, ro, csv):
    """(command line, words its error must name): an existing folder where a file goes, a file
    where a folder goes, and a read-only folder, for every command that writes."""
    f = tmp / "afile.txt"
    f.write_text("x")
    train = ["train", "--dataset", csv, "--label-column", "label", *SMALL]
    return {
        "train --save DIR": (train + ["--save", tmp], ["--save", "is a directory", tmp]),
        "train --out FILE": (train + ["--out", f], ["--out", "must be a directory", f]),
        "train --save read-only": (train + ["--save", ro / "m.npz"], ["--save", ro]),
        "train --out read-only": (train + ["--out", ro / "run"], ["--out", ro]),
        "train --save under a file": (train + ["--save", f / "m.npz"], ["--save", "a file"]),
        "predict --output DIR": (["predict", tmp / "nope", "--input", csv, "--output", tmp],
                                 ["--output", "is a directory"]),
        "report --output DIR": (["report", tmp, "--output", tmp], ["--output", "is a directory"]),
        "lr-find --plot read-only": (["lr-find", "--plot", ro / "lr.png"], ["--plot", ro]),
        "transfer --json DIR": (["transfer", "--json", tmp], ["--json", "is a directory"]),
        "transfer --save read-only": (["transfer", "--save", ro / "p.ckpt"], ["--save", ro]),
        "train-captioner --save DIR": (["train-captioner", "--save", tmp],
                                       ["--save", "is a directory"]),
        "gradient-flow --out DIR": (["gradient-flow", "--out", tmp], ["--out", "is a directory"]),
        "train-char --out FILE": (["train-char", f, "--out", f], ["--out", "must be a directory"]),
        "sentiment --out read-only": (["sentiment", f, "--out", ro / "s"], ["--out", ro]),
        "seq2seq --out FILE": (["seq2seq", "--out", f], ["--out", "must be a directory"]),
    }


def test_unwritable_output_paths_fail_at_start(tmp_path, digits_csv):
    cases = 0
    with read_only_folder(tmp_path / "ro") as ro:
        for name, (argv, words) in _bad_outputs(tmp_path, ro, digits_csv).items():
            code, out, err = chainrule(*argv, timeout=30)
            assert code == 2, (name, out, err)
            one_error_line(err, *words)
            assert "dataset=" not in out and "epoch" not in out, (name, out)   # no work was done
            cases += 1
    assert cases == 15
    assert not (tmp_path / "m.npz").exists()


def test_train_save_into_a_directory_fails_before_training_in_the_library(tmp_path, monkeypatch):
    from chainrule.data import prepare
    from chainrule.train.experiment import train_run
    from chainrule.train.recipes import train_settings

    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the output path was checked")

    monkeypatch.setattr(prepare, "prepare_data", no_data)   # refused before the data is loaded
    with pytest.raises(IsADirectoryError, match="--save is a directory"):
        train_run(train_settings(epochs=50, save=str(tmp_path), progress=False), log=None)


def test_save_into_a_folder_that_does_not_exist_yet_makes_it(tmp_path, digits_csv):
    path = tmp_path / "models" / "digits" / "m.npz"
    code, out, err = chainrule("train", "--dataset", digits_csv, "--label-column", "label",
                               "--epochs", 1, *SMALL, "--save", path)
    assert code == 0, err
    assert cr.load(str(path))["format"] == "chainrule-model"
