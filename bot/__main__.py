"""``python -m bot`` is the same as the ``invoicebot`` console script."""

from bot.cli import main

raise SystemExit(main())
