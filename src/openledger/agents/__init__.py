"""Agents: a published model plus a configuration, registered on chain (docs/agents.md)."""
