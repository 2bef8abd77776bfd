"""``python -m infiniretri`` runs the command line."""

from .cli import main

raise SystemExit(main())
