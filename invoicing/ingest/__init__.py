"""Ingest: what the OMS tells us — companies, products and prices, orders — over the feed, CSV or Slack."""
