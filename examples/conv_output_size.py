"""How big is a convolution's output? The formula, on a few layer settings, checked against the
layers themselves.

For an input of width w_in, a kernel of size k, stride s, padding p (zeros added on each side)
and dilation d (gaps between the kernel's taps, so it spans d(k - 1) + 1 pixels):

    w_out = floor((w_in + 2p - d(k - 1) - 1) / s) + 1

The same holds for each axis (height and width separately) and for pooling (a max pool 2x2 is
k = 2, s = 2). The transposed convolution runs it backwards:

    w_out = (w_in - 1) s - 2p + d(k - 1) + output_padding + 1

    python examples/conv_output_size.py
"""
import chainrule as cr
from chainrule import nn


def output_size(w_in, k, s=1, p=0, d=1):
    """w_out = floor((w_in + 2p - d(k - 1) - 1) / s) + 1."""
    return (w_in + 2 * p - d * (k - 1) - 1) // s + 1


def transposed_output_size(w_in, k, s=1, p=0, d=1, output_padding=0):
    return (w_in - 1) * s - 2 * p + d * (k - 1) + output_padding + 1


# (what it is, input height x width, kernel, stride, padding, dilation)
SETTINGS = [
    ("LeNet-5 conv1, no padding", (32, 32), 5, 1, 0, 1),
    ("LeNet-5 conv1 on MNIST, pad 2", (28, 28), 5, 1, 2, 1),
    ("3x3 pad 1 (VGG): size kept", (8, 8), 3, 1, 1, 1),
    ("stride 2 halves", (32, 32), 3, 2, 1, 1),
    ("AlexNet conv1, 11x11 stride 4", (227, 227), 11, 4, 0, 1),
    ("dilation 2: a 3x3 spans 5x5", (10, 10), 3, 1, 0, 2),
    ("stride 3 leaves a remainder", (10, 10), 3, 3, 0, 1),
    ("non-square input and kernel", (9, 14), (3, 5), (1, 2), (1, 0), 1),
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


def check(name, size, k, s, p, d):
    """The formula's (h, w) and the layer's actual output (h, w) for one setting."""
    (h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw) = size, _pair(k), _pair(s), _pair(p), _pair(d)
    formula = (output_size(h, kh, sh, ph, dh), output_size(w, kw, sw, pw, dw))
    layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
    with cr.no_grad():
        actual = tuple(layer(cr.zeros(1, 1, h, w)).shape[2:])
    return formula, actual


def main():
    print("w_out = floor((w_in + 2p - d(k - 1) - 1) / s) + 1\n")
    print(f"{'layer':32} {'input':>9} {'k':>6} {'s':>6} {'p':>6} {'d':>3}  "
          f"{'formula':>9} {'Conv2d':>9}")
    rows = []
    for name, size, k, s, p, d in SETTINGS:
        formula, actual = check(name, size, k, s, p, d)
        assert formula == actual, (name, formula, actual)
        rows.append((name, formula, actual))
        fmt = lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v)
        print(f"{name:32} {fmt(size):>9} {fmt(k):>6} {fmt(s):>6} {fmt(p):>6} {d:>3}  "
              f"{fmt(formula):>9} {fmt(actual):>9}")

    # 'same' padding keeps the size at stride 1: p = d(k - 1) / 2 on each side
    layer = nn.Conv2d(1, 1, 5, padding="same", dilation=2)
    with cr.no_grad():
        same = tuple(layer(cr.zeros(1, 1, 13, 13)).shape[2:])
    print(f"\npadding='same', k=5, d=2 on 13x13 -> {same[0]}x{same[1]} (p = d(k-1)/2 = 4)")

    # pooling follows the same formula: a 2x2 max pool with stride 2 halves (rounding down)
    with cr.no_grad():
        pooled = tuple(nn.MaxPool2d(2)(cr.zeros(1, 1, 7, 7)).shape[2:])
    print(f"MaxPool2d(2) on 7x7 -> {pooled[0]}x{pooled[1]} (formula: {output_size(7, 2, 2)})")

    # the transposed convolution undoes the size change of a stride-2 convolution
    up = nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1)
    with cr.no_grad():
        t = tuple(up(cr.zeros(1, 1, 16, 16)).shape[2:])
    print(f"ConvTranspose2d(k=3, s=2, p=1, output_padding=1) on 16x16 -> {t[0]}x{t[1]} "
          f"(formula: {transposed_output_size(16, 3, 2, 1, output_padding=1)})")

    # a kernel larger than the padded input is an error that names the layer and the sizes
    try:
        nn.Conv2d(1, 1, 5)(cr.zeros(1, 1, 4, 4))
    except ValueError as e:
        print(f"\n5x5 kernel on a 4x4 input: ValueError: {e}")
    print(f"\nall {len(rows)} settings: formula == actual layer output")
    return rows, same, pooled, t


if __name__ == "__main__":
    main()
