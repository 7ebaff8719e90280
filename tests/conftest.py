"""Shared test setup: seeded generators for every test, ``tests/`` on the import path so that
test modules in sub-folders can ``from helpers import check_against_torch``, and the headless
browser the report test renders with (found, or installed with apt-get, never skipped)."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# One BLAS thread for the suite: on shared CI runners, threads of a multi-threaded BLAS wait on
# each other behind other processes and turn millisecond tests into seconds. Results are the same.
import chainrule  # noqa: E402

chainrule.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same generator state, so failures reproduce run to run."""
    import chainrule

    chainrule.manual_seed(0)
    torch = sys.modules.get("torch")     # seed torch only where a test module imported it
    if torch is not None:
        torch.manual_seed(0)
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
    yield


@pytest.fixture
def rng():
    """A NumPy generator for building test inputs (seeded per test)."""
    return np.random.default_rng(1234)


# -- the browser of tests/viz/test_report.py -------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _install_line(sudo):
    s = "sudo " if sudo else ""
    return f"{s}apt-get update && {s}apt-get install -y chromium"


def locate_browser(env=None, log=None):
    """The path of a headless-capable Chromium/Chrome: ``CHAINRULE_TEST_BROWSER`` if set, else the
    first of ``BROWSERS`` on ``PATH``, else Debian's ``chromium`` installed with apt-get where this
    user may (root, or ``sudo -n``) and ``CHAINRULE_TEST_NO_INSTALL`` is not set. Otherwise the
    test fails (never skips) with the exact install line, so a fresh machine can run the README's
    test command and a machine that cannot is told what to do."""
    env = dict(os.environ if env is None else env)
    search = env.get("PATH", os.defpath)
    log = log or (lambda msg: print(msg, file=sys.__stderr__, flush=True))
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    line = _install_line(sudo=not root)
    hint = (f"install it with:\n    {line}\nor set CHAINRULE_TEST_BROWSER to a Chromium or "
            f"Chrome executable")
    override = env.get("CHAINRULE_TEST_BROWSER")
    if override:
        found = shutil.which(override, path=search)
        if found:
            return found
        pytest.fail(f"CHAINRULE_TEST_BROWSER={override!r} is not an executable; {hint}", pytrace=False)
    for name in BROWSERS:
        found = shutil.which(name, path=search)
        if found:
            return found
    why = f"none of {', '.join(BROWSERS)} is on PATH"
    apt = shutil.which("apt-get", path=search)
    sudo_exe = shutil.which("sudo", path=search)
    sudo = [] if root else [sudo_exe or "sudo", "-n"]
    if env.get("CHAINRULE_TEST_NO_INSTALL", "0") not in ("", "0"):
        why += " (CHAINRULE_TEST_NO_INSTALL is set: not installing)"
    elif apt is None:
        why += " and there is no apt-get to install Debian's chromium"
    elif not root and (sudo_exe is None
                       or subprocess.run(sudo + ["true"], capture_output=True, env=env).returncode):
        why += " and this user can neither install packages nor sudo without a password"
    else:
        # Bounded: a stuck mirror fails the test with the install line instead of hanging the suite.
        log("installing Debian's chromium for the report's browser test (once; a few minutes at most)")
        apt_env = dict(env, DEBIAN_FRONTEND="noninteractive")
        steps = [(sudo + [apt, "update", "-qq"], 300),
                 (sudo + [apt, "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=300",
                          "chromium"], 900)]
        for cmd, limit in steps:
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, env=apt_env,
                                      timeout=limit)
            except subprocess.TimeoutExpired:
                why += f"; `{' '.join(cmd)}` ran past {limit} s"
                break
            if proc.returncode:
                why += f"; `{' '.join(cmd)}` exited {proc.returncode}: {proc.stderr.strip()[-600:]}"
                break
        else:
            for name in BROWSERS:
                found = shutil.which(name, path=search)
                if found:
                    return found
            why += "; apt-get installed chromium but no browser appeared on PATH"
    pytest.fail(f"headless Chromium is needed to render the HTML report: {why}; {hint}",
                pytrace=False)


@pytest.fixture(scope="session")
def browser():
    """The headless browser for tests marked ``browser`` (see ``locate_browser``)."""
    return locate_browser()


@pytest.fixture
def browser_locator():
    """``locate_browser`` itself, for the tests of its failure and install paths (a fixture, since
    other conftest modules shadow ``import conftest``)."""
    return locate_browser
