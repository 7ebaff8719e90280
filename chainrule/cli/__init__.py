"""The ``chainrule`` command: the top-level parser and the dispatch to each family's handlers.

    chainrule train | evaluate | predict | summary | report | lr-find        (cli/train.py)
    chainrule train-char | generate | sentiment | seq2seq | mnist1d-seq | gradient-flow
                                                                            (cli/sequences.py)
    chainrule similar | transfer | train-captioner | caption                (cli/vision.py)
    chainrule --help / chainrule train --help

Each family module adds its subcommands with ``add_commands(sub)``; a subcommand may also set
``resolve`` (filling its unset options, e.g. from a recipe; it returns extra arguments for its
handler), and ``outputs`` ({dest: "file" or "dir"}: the paths it will write, checked before
any work). The families import ``cli.common`` only, never this module or each other.

Every error ends the command with status 2 and one line on stderr, 'chainrule CMD: error: ...',
without a traceback; ``chainrule --debug CMD`` shows the traceback instead.
"""
import os
import sys

from . import sequences, train, vision
from .common import Parser, check_output_dir, check_output_file, positive_int

FAMILIES = (train, sequences, vision)


def build_parser():
    p = Parser(
        prog="chainrule",
        description="chainrule: deep learning from first principles on NumPy. "
                    "Train networks from the command line, or import chainrule in Python.",
        epilog="Run 'chainrule train' for a first network: an MLP on handwritten digits "
               "(a few seconds). See 'chainrule train --help' for its options.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="threads for NumPy's matrix products (default: the BLAS's own choice); "
                        "1 is much faster on a machine shared with other busy processes")
    p.add_argument("--debug", action="store_true",
                   help="on an error, show the Python traceback instead of the one-line message")
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


def check_outputs(args):
    """Refuse, before any work, an output path of the command that cannot be written (a directory
    where a file is expected, a read-only file or folder): a failed save after training loses the
    model."""
    for dest, kind in (getattr(args, "outputs", None) or {}).items():
        path = getattr(args, dest, None)
        option = "--" + dest.replace("_", "-")
        (check_output_dir if kind == "dir" else check_output_file)(path, option)
        if path and kind == "file":          # 'models/a.npz' makes models/, as --out does
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def error_line(e):
    """An exception as one line: an OSError as 'what: path', others as their message (the type
    name in front when the message alone would not say what went wrong)."""
    if isinstance(e, OSError) and e.strerror:
        text = f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    else:
        text = str(e) if str(e) else type(e).__name__
        if not isinstance(e, (ValueError, TypeError, FloatingPointError, OSError)):
            text = f"{type(e).__name__}: {text}"
    return " ".join(text.split())             # one line, whatever the message held


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:                         # noqa: BLE001 - every error is one line
        if args.debug:
            raise
        print(f"chainrule {args.command}: error: {error_line(e)}", file=sys.stderr)
        return 2


def _run(parser, args):
    if args.version:
        from .. import __version__
        print(f"chainrule {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 0
    state = _resolve(args)                         # a bad --config or --resume, before any work
    check_outputs(args)
    if args.threads:
        from .. import set_num_threads
        set_num_threads(args.threads)
    if state is not None:
        return args.func(args, state)
    return args.func(args)
