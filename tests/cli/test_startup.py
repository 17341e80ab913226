"""CLI start-up: the command line loads only what a command uses, and `--version` says which
code and which contract interface answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import openledger
from openledger.chain.compile import abi_hash, compile_all
from openledger.version import git_commit, version_info

HEAVY = ("torch", "transformers", "vyper", "web3", "eth_account", "alembic")
REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import contextlib, io, json, sys
code = sys.argv[1]
if code == "import":
    import openledger.cli.main
else:
    from openledger.cli.main import main
    with contextlib.redirect_stdout(io.StringIO()) as out:
        rc = main(code.split())
    assert rc == 0 and out.getvalue(), (rc, out.getvalue())
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy})))
"""


def _loaded(what: str, tmp_path: Path) -> list[str]:
    probe = _PROBE.replace("{heavy}", repr(set(HEAVY)))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENLEDGER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", probe, what],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("what", ["import", "--help", "datanet --help", "credit --help"])
def test_start_up_loads_no_heavy_library(what: str, tmp_path: Path) -> None:
    assert _loaded(what, tmp_path) == []


def test_version_names_package_commit_and_abis(capsys: pytest.CaptureFixture[str]) -> None:
    from openledger.cli.main import main

    assert main(["--version"]) == 0
    line = capsys.readouterr().out.strip()
    info = version_info()
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    assert info["version"] == openledger.__version__ == "0.1.0"
    if head:  # a git checkout (an installed wheel has no commit to name)
        assert info["commit"] == head
        assert f"commit {head[:12]}" in line
    abis = {name: art.abi for name, art in compile_all().items()}
    canonical = json.dumps(abis, sort_keys=True, separators=(",", ":")).encode()
    assert info["abi_hash"] == abi_hash() == __import__("hashlib").sha256(canonical).hexdigest()
    assert line == (
        f"openledger 0.1.0 (commit {(head or 'unknown')[:12]}, contract ABIs sha256 "
        f"{info['abi_hash']})"
    )


def test_git_commit_reads_refs_and_packed_refs(tmp_path: Path) -> None:
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text("# pack-refs with: peeled\n" + "a" * 40 + " refs/heads/main\n")
    inside = tmp_path / "repo" / "src" / "pkg" / "mod.py"
    inside.parent.mkdir(parents=True)
    inside.write_text("")
    assert git_commit(inside) == "a" * 40
    (git / "refs" / "heads" / "main").write_text("b" * 40 + "\n")
    assert git_commit(inside) == "b" * 40
    (git / "HEAD").write_text("c" * 40 + "\n")  # detached
    assert git_commit(inside) == "c" * 40
    assert git_commit(Path("/")) is None
