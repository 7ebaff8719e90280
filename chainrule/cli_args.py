"""Argument types shared by the ``chainrule`` subcommands: each parses a number and checks its range,
with one clear message (argparse prints it as 'argument --epochs: expected a positive integer ...')."""
import argparse


def number(kind, ok, what):
    """An argparse ``type=`` that converts with ``kind`` (int/float) and accepts values with ``ok``."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return v
    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = number(int, lambda v: v >= 1, "a positive integer")
nonneg_int = number(int, lambda v: v >= 0, "a non-negative integer")
positive_float = number(float, lambda v: v > 0, "a positive number")
fraction = number(float, lambda v: 0 < v < 1, "a fraction between 0 and 1")
unit_interval = number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
