"""OP Stack fees: the L1 data fee beside the L2 execution fee, and the devnet's predeploys.

On an OP Stack chain a transaction pays for its L2 gas *and* for publishing its data on
L1; the ``GasPriceOracle`` predeploy (``0x420…00F``) says how much (``getL1Fee(data)``, from
the L1 fee parameters the ``L1Block`` predeploy ``0x420…015`` holds). Cost estimates of the
node's transactions and of the writes it prepares for wallets add that fee wherever the
chain has the oracle (on a chain without it the fee is 0).

The embedded devnet runs anvil in OP Stack mode (``--network optimism``), which has no
predeploys: :func:`install_predeploys` sets the code of GasPriceOracle and L1Block from the
compiled artefacts of ``@eth-optimism/contracts-bedrock`` (npm, pinned in package.json),
turns on the Ecotone and Fjord fee rules and sets L1 fee parameters like OP Mainnet's.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
L1_BLOCK = "0x4200000000000000000000000000000000000015"
BEDROCK = "@eth-optimism/contracts-bedrock"
_GET_L1_FEE = "0x49948e0e"  # getL1Fee(bytes)

# The devnet's L1: base fee 10 gwei, blob base fee 1 gwei, OP Mainnet's Ecotone scalars.
DEVNET_L1 = {
    "base_fee": 10 * 10**9,
    "blob_base_fee": 10**9,
    "base_fee_scalar": 1368,
    "blob_base_fee_scalar": 810_949,
}


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def l1_fee(client: Any, data: str | bytes) -> int:
    """The L1 data fee, in wei, of a transaction carrying ``data`` (0 on a chain without
    the GasPriceOracle predeploy). The oracle adds the signature's 68 bytes itself."""
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
    if not has_oracle(client):
        return 0
    size = len(raw)
    padded = raw + b"\x00" * ((32 - size % 32) % 32)
    call = _GET_L1_FEE + _word(32)[2:] + _word(size)[2:] + padded.hex()
    out = client.rpc("eth_call", [{"to": GAS_PRICE_ORACLE, "data": call}, "latest"])
    return int(out, 16) if out and out != "0x" else 0


def has_oracle(client: Any) -> bool:
    cache_ = client.__dict__.setdefault("_op_oracle", {})
    if "has" not in cache_:
        code = client.rpc("eth_getCode", [GAS_PRICE_ORACLE, "latest"])
        cache_["has"] = bool(code and code != "0x")
    return cache_["has"]


def estimate_cost(client: Any, tx: dict[str, Any]) -> dict[str, Any]:
    """What sending ``tx`` (from, to, data, value) costs: gas, gas price, the L2 execution
    fee, the L1 data fee and their total, in wei (as decimal strings)."""
    params = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value") and v}
    if isinstance(params.get("value"), int):
        params["value"] = hex(params["value"])
    try:
        gas: int | None = int(client.rpc("eth_estimateGas", [params]), 16)
    except Exception:  # it depends on an earlier write of the same plan (an approval)
        gas = None
    price = int(client.rpc("eth_gasPrice"), 16)
    l2 = None if gas is None else gas * price
    l1 = l1_fee(client, tx.get("data") or "0x")
    return {
        "gas": gas,
        "gas_price": str(price),
        "l2_fee": None if l2 is None else str(l2),
        "l1_fee": str(l1),
        "total": None if l2 is None else str(l2 + l1),
    }


@cache
def bedrock_artifact(root: Path, name: str) -> dict[str, Any]:
    path = root / "node_modules" / BEDROCK / "forge-artifacts" / f"{name}.sol" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def install_predeploys(rpc: Any, repo_root: Path, l1: dict[str, int] = DEVNET_L1) -> None:
    """Set GasPriceOracle and L1Block on an anvil devnet (``rpc(method, params)``)."""
    for address, name in ((GAS_PRICE_ORACLE, "GasPriceOracle"), (L1_BLOCK, "L1Block")):
        code = bedrock_artifact(repo_root, name)["deployedBytecode"]["object"]
        rpc("anvil_setCode", [address, code])
    # GasPriceOracle slot 0: isEcotone (byte 0) and isFjord (byte 1)
    rpc("anvil_setStorageAt", [GAS_PRICE_ORACLE, _word(0), _word(0x0101)])
    # L1Block: slot 1 basefee; slot 3 sequenceNumber | blobBaseFeeScalar << 64 |
    # baseFeeScalar << 96; slot 7 blobBaseFee
    packed = (l1["blob_base_fee_scalar"] << 64) | (l1["base_fee_scalar"] << 96)
    rpc("anvil_setStorageAt", [L1_BLOCK, _word(1), _word(l1["base_fee"])])
    rpc("anvil_setStorageAt", [L1_BLOCK, _word(3), _word(packed)])
    rpc("anvil_setStorageAt", [L1_BLOCK, _word(7), _word(l1["blob_base_fee"])])


__all__ = ["GAS_PRICE_ORACLE", "L1_BLOCK", "estimate_cost", "install_predeploys", "l1_fee"]
