"""Running the ``chainrule`` command in-process for the CLI tests."""
from chainrule.cli import main


def run(argv, capsys):
    """(exit status, stdout, stderr) of ``chainrule ARGV``; argparse's own exits count as statuses."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err
