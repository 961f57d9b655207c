"""``python -m shapedemo``: the command line (see ``shapedemo.cli``)."""

from shapedemo.cli import main

raise SystemExit(main())
