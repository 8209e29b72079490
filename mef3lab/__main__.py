"""``python -m mef3lab``: the same as the ``mef3lab`` command."""

from .cli import main

raise SystemExit(main())
