"""``python -m chaoskit``: the same as the ``chaoskit`` command."""

from chaoskit.cli.main import main

main()
