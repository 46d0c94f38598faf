"""Executors run independent work units: a local process pool (default) or Ray tasks."""
