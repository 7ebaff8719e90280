"""Every code block of README.md and docs/ runs as pasted, and the site builds.

How a page is run (``run_page``): its fenced blocks in order, in one fresh temporary directory
(also ``$HOME``), sharing state: ``python`` blocks are executed in one namespace per page,
``bash`` blocks by ``bash -euo pipefail`` with ``chainrule`` (this checkout's CLI), ``python``
and a ``pip`` stand-in on ``PATH``; ``examples/``, ``benchmarks/`` and ``docs/`` are linked into the directory,
so commands written for the repository's root run as printed. The stand-in installs nothing: it fails unless every extra
and package named is declared in pyproject.toml and installed here, so an install line that
names a missing extra fails. ``text`` blocks are output or usage and are not run. Any other
language, or none, fails the page.

Two HTML comments, on the line just before a block, change how it runs:

* ``<!-- docs-test: fixtures mnist cifar10 photos -->`` first writes tiny files in the layout the
  block expects (``~/data/mnist`` IDX files, ``~/data/cifar-10-batches-bin`` binary batches,
  ``photos/<class>/*.png``), standing in for downloads and the reader's own pictures.
* ``<!-- docs-test: skip -- reason -->`` does not run the block. Such blocks must be listed in
  ``SKIPPED`` below, with the check that replaces running them.
"""
import contextlib
import glob
import io
import os
import re
import resource
import subprocess
import sys
import textwrap
import time
import traceback

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")

# (page, first line of the block) -> why it is not run. Kept short on purpose.
SKIPPED = {
    ("README.md", 'pip install -e ".[test]" && python -m pytest -q'):
        "the test suite itself; test_readme checks that .ci/run runs this very line",
}

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(skip|fixtures)\b(.*?)-->", re.S)
SHELL = {"bash", "sh", "shell"}


def pages():
    """README.md and every Markdown page under docs/, relative to the repository."""
    found = sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(DOCS, "**", "*.md"),
                                                                recursive=True))
    return ["README.md"] + found


def blocks(path):
    """[(line, lang, code, directive, argument)] of one Markdown file, in order."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip().rsplit("\n", 1)[-1]
        d = DIRECTIVE.search(before)
        directive, arg = (d.group(1), d.group(2).strip(" -\n")) if d else (None, "")
        out.append((line, m.group(1).strip(), m.group(2), directive, arg))
    return out


# -- stand-ins for downloads and the reader's files -----------------------------------------------

def _write_idx(path, array):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 0x0800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with open(path, "wb") as f:
        f.write(header + array.tobytes())


def fixture_mnist(home, rng):
    d = os.path.join(home, "data", "mnist")
    os.makedirs(d, exist_ok=True)
    for kind, n in (("train", 40), ("t10k", 20)):
        labels = np.arange(n) % 10
        _write_idx(os.path.join(d, f"{kind}-images-idx3-ubyte"), rng.integers(0, 256, (n, 28, 28)))
        _write_idx(os.path.join(d, f"{kind}-labels-idx1-ubyte"), labels)


def fixture_cifar10(home, rng):
    d = os.path.join(home, "data", "cifar-10-batches-bin")
    os.makedirs(d, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        n = 10
        records = np.concatenate([(np.arange(n) % 10)[:, None],
                                  rng.integers(0, 256, (n, 3 * 32 * 32))], axis=1)
        records.astype(np.uint8).tofile(os.path.join(d, name))


def fixture_photos(home, rng):
    from PIL import Image
    for cls, channel in (("cats", 0), ("dogs", 2)):
        d = os.path.join(home, "photos", cls)
        os.makedirs(d, exist_ok=True)
        for i in range(8):
            img = rng.integers(0, 80, (40, 40, 3))
            img[..., channel] += 150
            Image.fromarray(img.astype(np.uint8)).save(os.path.join(d, f"{i}.png"))
    Image.open(os.path.join(home, "photos", "cats", "0.png")).save(
        os.path.join(home, "photos", "q.png"))


FIXTURES = {"mnist": fixture_mnist, "cifar10": fixture_cifar10, "photos": fixture_photos}

PIP = '''\
#!{python}
"""pip, as the docs test sees it: checks that what the line would install is here already."""
import importlib.metadata as md, re, sys, tomllib
with open({pyproject!r}, "rb") as f:
    extras = tomllib.load(f)["project"]["optional-dependencies"]
args = [a for a in sys.argv[1:] if not a.startswith("-")]
if not args or args[0] != "install":
    sys.exit(f"pip (docs test): only 'pip install' is understood, got {{sys.argv[1:]}}")
needed = []
for a in args[1:]:
    m = re.fullmatch(r"(\\.|chainrule)(?:\\[(.*)\\])?", a.strip("'\\""))
    if m is None:
        needed.append(a)
        continue
    for extra in filter(None, (m.group(2) or "").split(",")):
        if extra not in extras:
            sys.exit(f"pip (docs test): pyproject.toml declares no extra {{extra!r}}")
        needed += extras[extra]
missing = []
for req in needed:
    name = re.match(r"[A-Za-z0-9_.-]+", req).group(0)
    try:
        md.distribution(name)
    except md.PackageNotFoundError:
        missing.append(req)
if missing:
    sys.exit(f"pip (docs test): not installed here: {{missing}}")
print("pip (docs test): everything", " ".join(sys.argv[1:]), "installs is present")
'''

CHAINRULE = '''\
#!{python}
import sys
sys.path.insert(0, {repo!r})
from chainrule.cli import main
sys.exit(main())
'''


class Page:
    """One page being run: its directory, environment, Python namespace and block outputs."""

    def __init__(self, tmp_path):
        self.dir = str(tmp_path)
        bindir = os.path.join(self.dir, ".bin")
        os.makedirs(bindir)
        for name, template in (("chainrule", CHAINRULE), ("pip", PIP)):
            path = os.path.join(bindir, name)
            with open(path, "w") as f:
                f.write(template.format(python=sys.executable, repo=REPO,
                                        pyproject=os.path.join(REPO, "pyproject.toml")))
            os.chmod(path, 0o755)
        os.symlink(sys.executable, os.path.join(bindir, "python"))
        # Commands printed as run "from the repository's root" find its scripts here too.
        for name in ("examples", "benchmarks", "docs"):
            os.symlink(os.path.join(REPO, name), os.path.join(self.dir, name))
        import matplotlib          # its font cache stays where it is: a new one costs seconds
        self.env = dict(os.environ, HOME=self.dir, MPLBACKEND="Agg",
                        MPLCONFIGDIR=os.environ.get("MPLCONFIGDIR") or matplotlib.get_configdir(),
                        PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
                        PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.ns = {"__name__": "__docs__"}
        self.outputs = []             # (line, stdout) per block run
        self.rng = np.random.default_rng(0)


def run_page(relpath, tmp_path, monkeypatch, root=REPO):
    """Run the blocks of ``relpath`` as described at the top; pytest.fail names the failing one."""
    import matplotlib
    matplotlib.use("Agg")
    path = os.path.join(root, relpath)
    page = Page(tmp_path)
    monkeypatch.chdir(page.dir)
    monkeypatch.setenv("HOME", page.dir)
    for line, lang, code, directive, arg in blocks(path):
        where = f"{relpath}:{line}"
        started = time.perf_counter(), _cpu()
        if directive == "skip":
            first = code.strip().splitlines()[0]
            if (relpath, first) not in SKIPPED:
                pytest.fail(f"{where}: block marked skip but not listed in SKIPPED: {first!r}")
            continue
        if directive == "fixtures":
            for name in arg.split():
                if name not in FIXTURES:
                    pytest.fail(f"{where}: unknown fixture {name!r} (known: {sorted(FIXTURES)})")
                FIXTURES[name](page.dir, page.rng)
        if lang == "text":
            continue
        if lang == "python":
            # Padding with newlines makes tracebacks point at the Markdown file's own lines.
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    exec(compile("\n" * line + code, path, "exec"), page.ns)
            except BaseException:               # noqa: BLE001 - any failure of a pasted block
                pytest.fail(f"{where}: python block failed:\n{traceback.format_exc()[-3000:]}")
            page.outputs.append((line, out.getvalue()))
            _report_time(where, started)
        elif lang in SHELL:
            try:
                proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=page.dir,
                                      env=page.env, capture_output=True, text=True, timeout=300)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{where}: shell block ran past 300 s")
            if proc.returncode != 0:
                pytest.fail(f"{where}: shell block exited {proc.returncode}\n--- stdout\n"
                            f"{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-3000:]}")
            page.outputs.append((line, proc.stdout))
            _report_time(where, started)
        else:
            pytest.fail(f"{where}: code block without a known language ({lang!r}): use python, "
                        f"bash, or text for output that is not run")
    return page


def _cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _report_time(where, started):
    # Shown with pytest -rA: what each block costs the suite (CPU time is steadier than wall).
    print(f"{where}: {time.perf_counter() - started[0]:.1f} s wall, {_cpu() - started[1]:.1f} s CPU")


def stdout_of(page):
    return "\n".join(out for _, out in page.outputs)


# -- the pages ------------------------------------------------------------------------------------

def _check_training(page):
    out = stdout_of(page)
    assert "Total params: 9,610" in out and "weighted avg" in out
    assert max(page.ns["trainer"].history["val_accuracy"]) > 0.9
    for f in ("lr_find.png", "accuracy.png", "weights.png", "runs/a/history.csv",
              "runs/a/checkpoints/last.ckpt", "runs/a/checkpoints/best.ckpt",
              "runs/b/report.html", "predictions.csv", "lr.png"):
        assert os.path.exists(os.path.join(page.dir, f)), f
    assert re.search(r"test_accuracy=0\.9\d", out), out[-2000:]
    assert "suggested_lr=" in out


def _check_convnets(page):
    assert "Total params: 147,454 (trainable 147,454, frozen 0)" in stdout_of(page)
    for f in ("filters.png", "maps.png"):
        assert os.path.exists(os.path.join(page.dir, f)), f
    assert stdout_of(page).count("test_accuracy=") >= 4


def _check_sequences(page):
    out = stdout_of(page)
    for key in ("checkpoint=", "test_accuracy=", "exact_match=", "png="):
        assert key in out, key
    assert page.ns["logits"].shape == (len(page.ns["texts"]), len(page.ns["classes"]))


def _check_transfer(page):
    out = stdout_of(page)
    assert page.ns["feats"].shape[0] == len(page.ns["X"])
    assert {"bleu1", "bleu4"} <= set(page.ns["bleu"])
    assert os.path.exists(os.path.join(page.dir, "transfer.png"))
    assert "photos/cats/0.png" in out or "cats/0.png" in out


CHECKS = {"docs/tutorials/training.md": _check_training,
          "docs/tutorials/convnets.md": _check_convnets,
          "docs/tutorials/sequences.md": _check_sequences,
          "docs/tutorials/transfer.md": _check_transfer}


@pytest.mark.parametrize("relpath", [p for p in pages() if p != "README.md"])
def test_docs_page_runs_as_pasted(relpath, tmp_path, monkeypatch, capsys):
    page = run_page(relpath, tmp_path, monkeypatch)
    if relpath in CHECKS:
        CHECKS[relpath](page)


def test_every_page_is_checked_and_in_the_site_nav():
    import yaml
    with open(os.path.join(REPO, "mkdocs.yml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)

    def walk(nav):
        for item in nav:
            if isinstance(item, dict):
                for v in item.values():
                    yield from (walk(v) if isinstance(v, list) else [v])
            else:
                yield item
    in_nav = {os.path.join("docs", p) for p in walk(config["nav"])}
    on_disk = set(pages()) - {"README.md"}
    assert in_nav == on_disk
    assert set(CHECKS) <= on_disk


def test_skipped_blocks_are_exactly_the_listed_exceptions():
    seen = set()
    for relpath in pages():
        for _, _, code, directive, _ in blocks(os.path.join(REPO, relpath)):
            if directive == "skip":
                seen.add((relpath, code.strip().splitlines()[0]))
    assert seen == set(SKIPPED)


def test_a_broken_block_fails_its_page(tmp_path, monkeypatch):
    """The runner must not swallow failures: each kind of broken block fails the page."""
    cases = {
        "python": "```python\nx = 1\nassert x == 2\n```\n",
        "shell": "```bash\nchainrule train --epochs 0\n```\n",
        "shell, first of two lines": "```bash\nfalse\necho after\n```\n",
        "pip of a missing extra": '```bash\npip install -e ".[no-such-extra]"\n```\n',
        "no language": "```\nprint(1)\n```\n",
        "unlisted skip": "<!-- docs-test: skip -- because -->\n```bash\nrm -rf /\n```\n",
    }
    for i, (name, text) in enumerate(cases.items()):
        (tmp_path / f"p{i}.md").write_text(text)
        with pytest.raises(pytest.fail.Exception):
            run_page(f"p{i}.md", tmp_path / f"run{i}", monkeypatch, root=str(tmp_path))
    # and a good page passes, sharing files between a shell and a python block
    (tmp_path / "ok.md").write_text("```bash\necho 3 > n.txt\n```\n\n```python\n"
                                    "n = int(open('n.txt').read())\n```\n")
    assert run_page("ok.md", tmp_path / "runok", monkeypatch, root=str(tmp_path)).ns["n"] == 3


# -- the command-line reference cannot drift ------------------------------------------------------

def _gen_cli():
    import importlib.util
    spec = importlib.util.spec_from_file_location("gen_cli", os.path.join(DOCS, "gen_cli.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _documented(cli_md):
    """{command: set of option names / positionals} from docs/cli.md's sections and tables."""
    out, current = {}, None
    for line in cli_md.splitlines():
        m = re.match(r"## chainrule(?: (\S+))?$", line)
        if m:
            current = out.setdefault(m.group(1) or "", set())
        elif current is not None and line.startswith("| `"):
            cell = line.split(" | ")[0][2:]
            for name in re.findall(r"`([^`]+)`", cell):
                current.add(name.split(" ")[0])
    return out


def test_cli_reference_lists_every_command_and_option():
    gen = _gen_cli()
    parser = gen.top_parser()
    with open(os.path.join(DOCS, "cli.md"), encoding="utf-8") as f:
        documented = _documented(f.read())
    actual = {"": set(gen.option_names(parser))}
    for name, aliases, _, sub in gen.commands(parser):
        actual[name] = set(gen.option_names(sub))
    fix = "; run `python docs/gen_cli.py` to update docs/cli.md"
    assert set(documented) == set(actual), f"commands differ{fix}"
    for cmd in actual:
        assert documented[cmd] == actual[cmd], f"chainrule {cmd}: options differ{fix}"


def test_cli_reference_check_notices_a_missing_option():
    with open(os.path.join(DOCS, "cli.md"), encoding="utf-8") as f:
        text = f.read()
    assert "--epochs" in _documented(text)["train"]
    train = text.index("## chainrule train\n")
    row = text.index("| `--epochs", train)
    cut = text[:row] + text[text.index("\n", row) + 1:]
    assert "--epochs" not in _documented(cut)["train"]
    assert "--epochs" in _documented(cut)["train-char"]      # other sections keep theirs


def test_cli_reference_matches_the_help_of_each_command(capsys):
    """Against what a user sees: every option `chainrule CMD --help` prints is in the
    reference's section for CMD."""
    from chainrule.cli import main
    with open(os.path.join(DOCS, "cli.md"), encoding="utf-8") as f:
        documented = _documented(f.read())
    for cmd in [name for name, _, _, _ in _gen_cli().commands()]:
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        invocations = re.findall(r"^ {2}(-.*?)(?: {2,}|$)", capsys.readouterr().out, re.M)
        shown = set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", " ".join(invocations)))
        assert "--help" in shown
        assert shown <= documented[cmd], shown - documented[cmd]


# -- the site --------------------------------------------------------------------------------------

def test_mkdocs_build_strict(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                           "-f", os.path.join(REPO, "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))   # material's banner
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for page in ("index.html", "cli/index.html", "design/index.html", "performance/index.html"):
        assert (tmp_path / "site" / page).exists(), page
    html = (tmp_path / "site" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "chainrule train" in html and "--epochs" in html


def test_readme_links_resolve():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [l for l in links if "://" not in l]
    assert local, "README links into docs/"
    missing = [l for l in local if not os.path.exists(os.path.join(REPO, l))]
    assert not missing, missing


if __name__ == "__main__":
    print(textwrap.dedent(__doc__))
