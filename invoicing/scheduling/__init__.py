"""Scheduling: when integrations run (schedule arithmetic) and how a replica claims due ones."""
