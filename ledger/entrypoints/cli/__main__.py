"""``python -m ledger.entrypoints.cli``: the ``obc-ledger`` console script without its script."""

import sys

from ledger.entrypoints.cli.main import main

sys.exit(main())
