"""``python -m hutch``: the ``hutch`` command."""

from hutch.cli import main

main()
