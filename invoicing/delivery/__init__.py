"""Delivery: what leaves the service — the PDF, the e-mail, the outbox and its transports."""
