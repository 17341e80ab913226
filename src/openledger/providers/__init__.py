"""Compute providers (docs/providers.md): nodes that stake, serve models with their own
engines and keys, and earn a compute share of the fees of the requests a gateway routes to
them."""
