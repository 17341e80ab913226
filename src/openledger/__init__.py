"""OpenLedger: datanets, model factory, OpenLoRA serving and proof of attribution."""

__version__ = "0.1.0"
