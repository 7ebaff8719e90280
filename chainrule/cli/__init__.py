"""The ``chainrule`` command: the top-level parser and the dispatch to each family's handlers.

    chainrule train | evaluate | predict | summary | report | lr-find        (cli/train.py)
    chainrule train-char | generate | sentiment | seq2seq | mnist1d-seq | gradient-flow
                                                                            (cli/sequences.py)
    chainrule similar | transfer | train-captioner | caption                (cli/vision.py)
    chainrule --help / chainrule train --help

Each family module adds its subcommands with ``add_commands(sub)``; a subcommand may also set
``resolve`` (filling its unset options, e.g. from a recipe; it returns extra arguments for its
handler). The families import ``cli.common`` only, never this module or each other.
"""
import argparse
import sys

from . import sequences, train, vision
from .common import positive_int

FAMILIES = (train, sequences, vision)


def build_parser():
    p = argparse.ArgumentParser(
        prog="chainrule",
        description="chainrule: deep learning from first principles on NumPy. "
                    "Train networks from the command line, or import chainrule in Python.",
        epilog="Run 'chainrule train' for a first network: an MLP on handwritten digits "
               "(a few seconds). See 'chainrule train --help' for its options.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="threads for NumPy's matrix products (default: the BLAS's own choice); "
                        "1 is much faster on a machine shared with other busy processes")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for family in FAMILIES:
        family.add_commands(sub)
    return p


def parse_args(argv=None):
    """(parser, args, extra): the command line parsed, the subcommand's unset options filled by
    its ``resolve`` (``chainrule train``: command line, --config, --resume, then the recipe), and
    the extra arguments that gives its handler (train: the resumed ``state``, or None)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return parser, args, _resolve(args)


def _resolve(args):
    resolve = getattr(args, "resolve", None)
    return (resolve(args) if resolve else {}).get("state")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        state = _resolve(args)
    except (ValueError, OSError) as e:            # a bad --config or --resume, before any work
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 2
    if args.version:
        from .. import __version__
        print(f"chainrule {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 0
    if args.threads:
        from .. import set_num_threads
        set_num_threads(args.threads)
    try:
        if state is not None:
            return args.func(args, state)
        return args.func(args)
    # OSError covers a missing file, a directory or an unreadable file given as --dataset/--save.
    except (ValueError, OSError, TypeError, KeyError, FloatingPointError, ImportError) as e:
        print(f"chainrule {args.command}: error: {e}", file=sys.stderr)
        return 2
