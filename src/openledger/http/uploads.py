"""Uploaded files, written to disk under safe names (the JSON API's and the web app's
contribution uploads)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import UploadFile

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_BYTES = 255


def safe_name(raw: str | None, i: int) -> str:
    """An upload's name as it may be written to disk: its last component, letters, digits,
    ``.``, ``_`` and ``-`` only, no leading dot (so never ``.`` or ``..``), at most 255
    bytes with its extension kept; ``file{i}`` when nothing is left."""
    base = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = SAFE_NAME.sub("_", base).lstrip(".")
    if len(name) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot and stem else ""
        name = name[: MAX_NAME_BYTES - len(ext) - 1].rstrip(".") + ("." + ext if ext else "")
    return name or f"file{i}"


async def save_uploads(files: list[UploadFile], directory: Path) -> tuple[list[Path], list[str]]:
    """Write uploads under ``directory``, each under its own (sanitised) name in a folder of
    its own, so parse errors and the manifest's records name the file as uploaded; returns
    the paths and those names."""
    paths, names = [], []
    for i, f in enumerate(files):
        name = safe_name(f.filename, i)
        path = directory / str(i) / name
        path.parent.mkdir()
        path.write_bytes(await f.read())
        paths.append(path)
        names.append(name)
    return paths, names
