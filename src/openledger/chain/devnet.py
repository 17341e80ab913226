"""The embedded devnet: the pinned anvil binary, run on 127.0.0.1 with state in the node home."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from openledger.config import DEVNET_CHAIN_ID, Settings
from openledger.errors import DevnetError
from openledger.fsutil import write_atomic
from openledger.procs import pid_alive

ANVIL_PACKAGE = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
STATE_DUMP_INTERVAL_S = 2  # anvil also dumps on a clean exit; this bounds loss on a crash


def find_anvil(settings: Settings) -> Path:
    """The anvil binary: OPENLEDGER_ANVIL, the repo's pinned npm package, or PATH."""
    candidates: list[Path] = []
    if settings.anvil_bin:
        candidates.append(Path(settings.anvil_bin))
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *here.parents]:
        candidates.append(parent / ANVIL_PACKAGE)
    on_path = shutil.which("anvil")
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise DevnetError(
        "The pinned anvil binary is not installed.",
        field="OPENLEDGER_ANVIL",
        fix="run `npm ci` in the repository (make does this), or set OPENLEDGER_ANVIL to an "
        "anvil binary.",
    )


def find_bedrock() -> Path:
    """The folder holding ``node_modules/@eth-optimism/contracts-bedrock`` (npm, pinned)."""
    from openledger.chain.l2fees import BEDROCK

    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *here.parents]:
        if (parent / "node_modules" / BEDROCK / "forge-artifacts").is_dir():
            return parent
    raise DevnetError(
        f"The OP Stack predeploy artefacts ({BEDROCK}) are not installed.",
        field="node_modules",
        fix="run `npm ci` in the repository (make does this).",
    )


@dataclass(frozen=True)
class DevnetStatus:
    running: bool
    pid: int | None
    url: str
    block_number: int | None = None
    chain_id: int | None = None


class Devnet:
    """Start, stop and inspect the node's own anvil."""

    def __init__(self, settings: Settings) -> None:
        if not settings.is_devnet:
            raise DevnetError(
                f"This node uses the external chain {settings.chain_url}; it has no devnet.",
                field="OPENLEDGER_CHAIN_URL",
                value=settings.chain_url,
                fix="unset OPENLEDGER_CHAIN_URL to use the embedded devnet.",
            )
        self.settings = settings
        self.layout = settings.layout
        self.url = settings.rpc_url

    # -- inspection ------------------------------------------------------------------------
    def _pid(self) -> int | None:
        try:
            pid = int(self.layout.anvil_pid.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def _rpc(self, method: str, timeout: float = 1.0, params: list | None = None) -> object | None:
        try:
            r = requests.post(
                self.url,
                json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
                timeout=timeout,
            )
            return r.json().get("result")
        except (requests.RequestException, ValueError):
            return None

    def status(self) -> DevnetStatus:
        pid = self._pid()
        block = self._rpc("eth_blockNumber") if pid else None
        chain = self._rpc("eth_chainId") if pid else None
        return DevnetStatus(
            running=pid is not None and block is not None,
            pid=pid,
            url=self.url,
            block_number=int(str(block), 16) if block else None,
            chain_id=int(str(chain), 16) if chain else None,
        )

    # -- lifecycle -------------------------------------------------------------------------
    def up(self, timeout: float = 30.0) -> DevnetStatus:
        """Start anvil unless it already runs; returns once it answers JSON-RPC."""
        current = self.status()
        if current.running:
            return current
        if self._rpc("eth_chainId") is not None:
            raise DevnetError(
                f"Another process already serves JSON-RPC at {self.url}.",
                field="OPENLEDGER_CHAIN_PORT",
                value=self.settings.chain_port,
                fix="stop it, or choose a free port with OPENLEDGER_CHAIN_PORT.",
            )
        if self.settings.chain_id != DEVNET_CHAIN_ID:
            raise DevnetError(
                f"The devnet runs chain id {DEVNET_CHAIN_ID}, but OPENLEDGER_CHAIN_ID is "
                f"{self.settings.chain_id}.",
                field="OPENLEDGER_CHAIN_ID",
                value=self.settings.chain_id,
                fix=f"unset OPENLEDGER_CHAIN_ID or set it to {DEVNET_CHAIN_ID}.",
            )
        anvil = find_anvil(self.settings)
        self.layout.chain_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(anvil),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.settings.chain_port),
            "--chain-id",
            str(DEVNET_CHAIN_ID),
            "--state",
            str(self.layout.chain_state),
            "--state-interval",
            str(STATE_DUMP_INTERVAL_S),
            "--preserve-historical-states",
            "--network",
            "optimism",  # OP Stack mode: the L2 the node settles on in production
        ]
        log = open(self.layout.anvil_log, "ab")  # noqa: SIM115 - handed to the child process
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        write_atomic(self.layout.anvil_pid, str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = self.layout.anvil_log.read_text(errors="replace")[-800:]
                raise DevnetError(
                    f"anvil exited with code {proc.returncode} at start. Log tail:\n{tail}",
                    field="anvil",
                    fix=f"read {self.layout.anvil_log}; a damaged {self.layout.chain_state} "
                    "can be moved away to start a fresh chain.",
                )
            if self._rpc("eth_blockNumber", timeout=0.5) is not None:
                self._keep_clock_monotonic()
                self._install_predeploys()
                return self.status()
            time.sleep(0.1)
        self.down()
        raise DevnetError(
            f"anvil did not answer at {self.url} within {timeout:.0f} s.",
            fix=f"read {self.layout.anvil_log}.",
        )

    def _install_predeploys(self) -> None:
        """GasPriceOracle and L1Block at their OP Stack addresses (chain/l2fees.py)."""
        from openledger.chain.head import rpc
        from openledger.chain.l2fees import install_predeploys

        install_predeploys(
            lambda method, params: rpc(self.url, method, params, timeout=5.0), find_bedrock()
        )

    def _keep_clock_monotonic(self) -> None:
        """anvil restores blocks from ``--state`` but not a clock moved forward with
        ``evm_increaseTime``; without this, new blocks would be older than the last one
        (and roots already active would look pending again)."""
        block = self._rpc("eth_getBlockByNumber", params=["latest", False])
        if isinstance(block, dict) and "timestamp" in block:
            last = int(str(block["timestamp"]), 16)
            if last >= int(time.time()):
                self._rpc("evm_setTime", params=[last + 1])

    def down(self, timeout: float = 20.0) -> bool:
        """Stop anvil (it writes its state on a clean exit); True if one was running."""
        pid = self._pid()
        if pid is None:
            self.layout.anvil_pid.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        self.layout.anvil_pid.unlink(missing_ok=True)
        return True
