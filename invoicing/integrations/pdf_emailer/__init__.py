"""The PDF Emailer: invoices issued per run, rendered as PDF and e-mailed to the buyer."""
