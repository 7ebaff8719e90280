"""The README runs as pasted (see tests/test_docs.py for how blocks are run): the install-and-train
command, then the short tour; the test command is the one block not run here, since it is this
suite: .ci/run must run that very line. The README's former tutorial snippets live in docs/ now
and are run (with their old assertions) by tests/test_docs.py."""
import os
import re

from test_docs import REPO, SKIPPED, blocks, run_page, stdout_of

README = os.path.join(REPO, "README.md")


def test_readme_runs_as_pasted(tmp_path, monkeypatch):
    page = run_page("README.md", tmp_path, monkeypatch)
    out = stdout_of(page)
    assert "pip (docs test): everything" in out                     # the install line's extras exist
    assert re.search(r"^test_accuracy=0\.9[5-9]\d*$", out, re.M), out[-1000:]   # chainrule train
    ns = page.ns
    assert ns["model"].num_parameters() == 9610
    assert ns["history"]["val_accuracy"][-1] > 0.9
    assert ns["cr"].load("model.npz").keys() == ns["model"].state_dict().keys()
    assert ns["x"].grad.data.tolist() == [2.0, 4.0, 6.0]


def test_the_readme_test_command_is_what_ci_runs():
    skipped = [code.strip() for _, _, code, d, _ in blocks(README) if d == "skip"]
    assert skipped == ['pip install -e ".[test]" && python -m pytest -q']
    assert ("README.md", skipped[0]) in SKIPPED
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
        ci = [line.strip() for line in f]
    assert skipped[0] in ci, ".ci/run must run the README's test command as written"


def test_readme_stays_one_page():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    assert len(text.splitlines()) <= 130
    assert len([b for b in blocks(README) if b[1] == "python"]) == 1     # one short tour
    for page in ("docs/cli.md", "docs/design.md", "docs/performance.md",
                 "docs/tutorials/training.md"):
        assert f"]({page}" in text, page
