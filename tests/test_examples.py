"""The scripts in examples/ run and reach the results their docstrings promise."""
import ast
import importlib.util
import os
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load_example(name):
    """Import examples/<name>.py as a module (its ``if __name__ == '__main__'`` part does not run)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smallest_perceptron_converges_to_least_squares(capsys):
    example = load_example("smallest_perceptron")
    w = example.fit()
    assert abs(w - 117.8 / 117.25) < 1e-6
    out = capsys.readouterr().out
    # the first step by hand: L = mean(y^2) / 2 = 14.79875, dL/dw = -mean(x y) = -29.45
    assert "loss = 14.798750  dL/dw = -29.450000" in out
    assert example.main() == pytest.approx(117.8 / 117.25, abs=1e-6)
    assert "117.8 / 117.25 = 1.004691" in capsys.readouterr().out


def test_perceptron_trace_runs_as_a_script():
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, "perceptron_trace.py")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # the course's first step: (-1, 1) with label -1 meets w = (0, 0), sign(0) = +1, no match
    assert "(-1, 1)   (0, 0)      0     +1  -1  no match  (1, -1)" in out
    assert "mistakes per epoch: [2, 0]" in out
    assert "training accuracy = 1.00" in out
    assert "XOR mistakes per epoch" in out
    xor = out.split("XOR mistakes per epoch: ")[1].split("]")[0].strip("[")
    assert all(int(m) > 0 for m in xor.split(","))             # never separable


def test_mlp_digits_reaches_high_accuracy(capsys):
    accuracy = load_example("mlp_digits").main(epochs=5, progress=False)
    assert accuracy > 0.9
    out = capsys.readouterr().out
    assert "after one epoch by hand" in out and f"test_accuracy={accuracy:.4f}" in out


@pytest.mark.parametrize("name", ["smallest_perceptron", "perceptron_trace", "mlp_digits"])
def test_examples_use_only_the_public_api(name):
    with open(os.path.join(EXAMPLES, f"{name}.py")) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chainrule"):
            assert not any(part.startswith("_") for part in node.module.split(".")), node.module
            assert not any(a.name.startswith("_") for a in node.names), ast.dump(node)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            pytest.fail(f"{name}.py uses the private attribute {node.attr}")
