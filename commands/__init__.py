"""What ops say: the ``/invoicing`` grammar, handlers and plain reply objects (no Slack SDK here)."""
