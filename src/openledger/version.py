"""What `openledger --version` reports: the package version, the git commit of the source
tree when it is a checkout, and the hash of the contract ABIs the node speaks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openledger import __version__


def git_commit(start: Path | None = None) -> str | None:
    """The commit checked out in the git work tree holding ``start`` (this package by
    default), read from ``.git`` without running git; None outside a checkout."""
    here = (start or Path(__file__)).resolve()
    for folder in (here, *here.parents):
        git = folder / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: PATH"
            text = git.read_text(encoding="utf-8").strip()
            if not text.startswith("gitdir:"):
                return None
            git = (folder / text.removeprefix("gitdir:").strip()).resolve()
        if git.is_dir():
            return _resolve_head(git)
    return None


def _resolve_head(git: Path) -> str | None:
    try:
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head or None
    ref = head.removeprefix("ref:").strip()
    common = git
    commondir = git / "commondir"
    if commondir.is_file():  # a linked worktree keeps its refs in the main .git
        common = (git / commondir.read_text(encoding="utf-8").strip()).resolve()
    for base in (git, common):
        loose = base / ref
        if loose.is_file():
            return loose.read_text(encoding="utf-8").strip() or None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    return None


def version_info() -> dict[str, Any]:
    """``{"version", "commit", "abi_hash"}`` (commit None outside a git checkout)."""
    from openledger.chain.compile import abi_hash

    return {"version": __version__, "commit": git_commit(), "abi_hash": abi_hash()}


def version_text(info: dict[str, Any]) -> str:
    commit = info["commit"][:12] if info["commit"] else "unknown"
    abis = info["abi_hash"]
    return f"openledger {info['version']} (commit {commit}, contract ABIs sha256 {abis})"
