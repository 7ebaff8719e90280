"""examples/convnet_digits.py and examples/conv_output_size.py run and show what they promise.
The full digits recipe (40 epochs, test accuracy 0.9861) takes about 13 s of CPU; here a shortened
run checks the script end to end."""
import ast
import importlib.util
import os

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conv_output_size_formula_matches_the_layers(capsys):
    example = load_example("conv_output_size")
    rows, same, pooled, transposed = example.main()
    assert len(rows) == len(example.SETTINGS) >= 6
    assert all(formula == actual for _, formula, actual in rows)
    assert same == (13, 13) and pooled == (3, 3) and transposed == (32, 32)
    assert example.output_size(227, 11, 4) == 55 and example.output_size(10, 3, d=2) == 6
    out = capsys.readouterr().out
    assert "w_out = floor((w_in + 2p - d(k - 1) - 1) / s) + 1" in out
    assert "AlexNet conv1, 11x11 stride 4      227x227     11      4      0   1      55x55" in out
    assert "larger than the padded input" in out


def test_convnet_digits_shortened_run_writes_both_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    example = load_example("convnet_digits")
    prefix = str(tmp_path / "digits")
    accuracy = example.main(epochs=3, channels=(8, 16), progress=False, out_prefix=prefix)
    assert accuracy > 0.8                     # 3 epochs of a narrow net; the full recipe: 0.986
    out = capsys.readouterr().out
    assert f"test_accuracy={accuracy:.4f}" == out.strip().splitlines()[-1]
    assert "Total params:" in out and "BatchNorm2d" in out
    for name in ("filters", "feature_maps"):
        with open(f"{prefix}_{name}.png", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["convnet_digits", "conv_output_size"])
def test_examples_use_only_the_public_api(name):
    with open(os.path.join(EXAMPLES, f"{name}.py")) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chainrule"):
            assert not any(part.startswith("_") for part in node.module.split(".")), node.module
            assert not any(a.name.startswith("_") for a in node.names), ast.dump(node)


def test_convnet_digits_full_recipe_reaches_the_target(tmp_path, capsys):
    """The issue's target, end to end: >= 0.985 on the 360 test digits (seed 0). About 13 s of
    CPU on one BLAS thread. The margin is small: 0.9861 is 5 errors, 0.985 allows 5; seeded runs
    repeat bit for bit on one machine, but another CPU's BLAS kernels round differently and can move
    it by an error or two, so CI asserts 0.98 (7 errors); the 0.985 target is measured by hand
    and reported in the issue's note."""
    accuracy = load_example("convnet_digits").main(progress=False,
                                                   out_prefix=str(tmp_path / "full"))
    assert accuracy >= 0.98
