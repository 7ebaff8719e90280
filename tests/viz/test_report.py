"""The HTML training report, from a real short run of `chainrule train --out`: every plot embedded,
the metrics and per-epoch tables, nothing fetched from outside; and rendered once in headless
Chromium (Debian's chromium package), whose screenshot must show the plots."""
import base64
import html.parser
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from chainrule.cli import main
from chainrule.viz.report import build_report, read_history_csv

PLOTS = ["loss", "accuracy", "lr", "confusion", "weights"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs") / "digits"
    code = main(["train", "--epochs", "3", "--hidden", "32", "--lr-schedule", "step", "--out",
                 str(d), "--no-progress"])
    assert code == 0
    return d


class Page(html.parser.HTMLParser):
    """The report's images, tables (id -> rows of cell texts), and every URL it refers to."""

    def __init__(self, text):
        super().__init__()
        self.images, self.tables, self.urls, self.tags = {}, {}, [], []
        self._table, self._row, self._cell = None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        for k in ("src", "href", "action", "data"):
            if k in a:
                self.urls.append(a[k])
        if tag == "img":
            self.images[a.get("id")] = a.get("src", "")
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
            self.tables[self._table].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def page(run_dir):
    return Page((run_dir / "report.html").read_text(encoding="utf-8"))


def test_run_directory_holds_config_history_checkpoints_metrics_and_report(run_dir):
    names = sorted(os.listdir(run_dir))
    assert names == ["checkpoints", "config.json", "history.csv", "metrics.json", "plots",
                     "report.html", "summary.json"]
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["best.ckpt", "last.ckpt"]
    assert sorted(os.listdir(run_dir / "plots")) == sorted(f"{p}.png" for p in PLOTS)
    epochs, h = read_history_csv(run_dir / "history.csv")
    assert epochs == [0, 1, 2] and np.allclose(h["lr"], [0.1, 0.01, 0.001])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["hidden"] == [32] and config["run"]["epochs"] == 3


def test_report_embeds_every_plot_as_png(run_dir):
    p = page(run_dir)
    for name in PLOTS:
        src = p.images.get(f"plot-{name}")
        assert src and src.startswith("data:image/png;base64,"), name
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert img.format == "PNG" and img.width > 300 and img.height > 200, name
        px = np.asarray(img.convert("L"))
        assert (px < 200).mean() > 0.01, name                     # not a blank image


def test_report_tables_metrics_config_summary_and_epochs(run_dir):
    p = page(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = dict((r[0], r[1]) for r in p.tables["metrics-table"])
    assert rows["test_accuracy"] == f"{metrics['test']['accuracy']:.4f}"
    assert rows["test_loss"] == f"{metrics['test']['loss']:.4f}"
    assert rows["epochs trained"] == "3" and "final val_accuracy" in rows
    epochs = p.tables["epoch-table"]
    assert epochs[0][:5] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [r[0] for r in epochs[1:]] == ["1", "2", "3"]
    _, h = read_history_csv(run_dir / "history.csv")
    assert epochs[3][1] == f"{h['loss'][2]:.4f}"
    assert ["hidden", "32"] in p.tables["config-run"]
    summary = p.tables["summary-table"]
    assert summary[1][:3] == ["0", "Linear", "(1, 32)"] and summary[-2][-1] == "2,410"
    assert len(p.tables["per-class-table"]) == 1 + 10 + 2


def test_report_is_self_contained(run_dir):
    p = page(run_dir)
    assert "link" not in p.tags and "iframe" not in p.tags
    assert p.urls and all(u.startswith("data:") for u in p.urls), p.urls
    text = (run_dir / "report.html").read_text()
    assert "http://" not in text and "https://" not in text and "@import" not in text


def test_report_command_rebuilds_it(run_dir, tmp_path, capsys):
    out = tmp_path / "again.html"
    assert main(["report", str(run_dir), "--output", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert sorted(k for k in Page(out.read_text()).images) == sorted(f"plot-{n}" for n in PLOTS)
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_report_without_matplotlib_still_has_the_tables(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    text = build_report({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, metrics={"test_loss": 0.6})
    p = Page(text)
    assert not p.images and "pip install chainrule[plot]" in text
    assert ["test_loss", "0.6000"] in p.tables["metrics-table"]


# -- in a real browser ------------------------------------------------------------------------------
# The ``browser`` fixture (tests/conftest.py) finds Chromium or installs Debian's package, and fails
# with the install line when it can do neither.

def headless(browser, args, profile, timeout=120):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
           f"--user-data-dir={profile}"] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def count_near(img, rgb, tol):
    return int((np.abs(img - np.array(rgb)).sum(axis=2) < tol).sum())


@pytest.mark.browser
def test_report_renders_in_headless_chromium(run_dir, tmp_path, browser):
    url = (run_dir / "report.html").resolve().as_uri()
    dom = headless(browser, ["--virtual-time-budget=10000", "--dump-dom", url], tmp_path / "profile1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'data-images="{len(PLOTS)}/{len(PLOTS)}"' in dom.stdout      # every image decoded

    shot = tmp_path / "report.png"
    proc = headless(browser, ["--window-size=1280,5000", f"--screenshot={shot}", url],
                    tmp_path / "profile2")
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (5000, 1280)
    # each plot's own colours are on screen: the curves (matplotlib's blue and orange), the
    # shaded train/validation gap, the green lr steps, the dark confusion cells, the red/blue
    # weight images
    seen = {"curves blue": count_near(img, (31, 119, 180), 40),
            "curves orange": count_near(img, (255, 127, 14), 40),
            "gap shading": count_near(img, (247, 221, 221), 20),
            "lr green": count_near(img, (44, 160, 44), 40),
            "confusion dark blue": count_near(img, (8, 48, 107), 60),
            "weights red": count_near(img, (230, 20, 20), 90),
            "weights blue": count_near(img, (20, 20, 230), 90)}
    assert all(v > 150 for v in seen.values()), seen


def _executable(path, text="#!/bin/sh\nexit 0\n"):
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_browser_lookup_fails_with_the_install_line_when_absent(tmp_path, browser_locator):
    """No browser on PATH and no apt-get to install one: the test fails, naming the install line."""
    locate_browser = browser_locator
    empty = tmp_path / "bin"
    empty.mkdir()
    with pytest.raises(pytest.fail.Exception) as e:
        locate_browser(env={"PATH": str(empty)})
    msg = str(e.value)
    assert "apt-get install -y chromium" in msg and "no apt-get" in msg, msg
    with pytest.raises(pytest.fail.Exception) as e:         # a named browser that is not there
        locate_browser(env={"PATH": str(empty), "CHAINRULE_TEST_BROWSER": str(empty / "chrome")})
    assert "CHAINRULE_TEST_BROWSER" in str(e.value) and "apt-get install -y chromium" in str(e.value)


def test_browser_lookup_installs_chromium_with_apt_get(tmp_path, browser_locator):
    """Absent but installable: apt-get update, then apt-get install chromium, then it is found.
    (A stand-in apt-get records its calls and puts a 'chromium' on PATH.)"""
    locate_browser = browser_locator
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls.txt"
    _executable(bindir / "apt-get", f"""#!{sys.executable}
import os, sys
with open({str(calls)!r}, "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
if "install" in sys.argv:
    with open({str(bindir / "chromium")!r}, "w") as f:
        f.write("#!/bin/sh\\nexit 0\\n")
    os.chmod({str(bindir / "chromium")!r}, 0o755)
""")
    _executable(bindir / "sudo", '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    _executable(bindir / "true")
    env = {"PATH": str(bindir)}
    assert locate_browser(env=env, log=lambda m: None) == str(bindir / "chromium")
    lines = calls.read_text().splitlines()
    assert lines[0].startswith("update") and "install -y" in lines[1] and lines[1].endswith("chromium")
    (bindir / "chromium").unlink()                 # opted out of installing: fails, with the line
    with pytest.raises(pytest.fail.Exception) as e:
        locate_browser(env=dict(env, CHAINRULE_TEST_NO_INSTALL="1"))
    assert "apt-get install -y chromium" in str(e.value)
    assert len(calls.read_text().splitlines()) == 2


def test_report_summary_marks_frozen_layers_and_counts_them():
    """A transfer-learning model: the frozen layers are marked and the frozen total is shown."""
    from chainrule import nn
    from chainrule.nn.summary import summary
    model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3))
    model[0].requires_grad_(False)
    text = build_report({"loss": [1.0]}, summary=summary(model, (8,)))
    rows = Page(text).tables["summary-table"]
    assert ["0", "Linear (frozen)", "(1, 4)", "36"] in rows
    assert ["2", "Linear", "(1, 3)", "15"] in rows
    assert ["trainable", "15"] in rows and ["frozen", "36"] in rows
