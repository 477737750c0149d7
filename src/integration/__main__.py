"""``python -m integration``: the same as the ``integration`` command."""

from integration.cli import main

main()
