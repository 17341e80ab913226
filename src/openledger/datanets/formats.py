"""Export formats of a snapshot (a module of its own: the CLI names them in `--help`)."""

EXPORT_FORMATS = ("jsonl", "parquet")
