"""How InvoiceBot runs: settings, database, CLI, and (later) Slack, scheduler and HTTP feed."""
