"""Parties: the tenant (seller) and its dropship companies (buyers), their accounting details and admins."""
