"""Reviewing a change with the local model: finding schema, prompts, secret scan, the per-file pipeline."""
