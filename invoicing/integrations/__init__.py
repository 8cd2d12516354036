"""Integrations: one package per accounting integration kind of a dropship company."""
