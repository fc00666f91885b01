"""``python -m pwtop`` runs the same entry point as the ``pwtop`` console script."""

from pwtop.cli import main

raise SystemExit(main())
