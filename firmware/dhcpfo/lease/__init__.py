"""Lease storage: the compact binding table (table) and its durable log records (log)."""
