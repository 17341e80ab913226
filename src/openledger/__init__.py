"""OpenLedger: datanets, model factory, OpenLoRA serving and proof of attribution on an EVM ledger."""

__version__ = "0.1.0"
