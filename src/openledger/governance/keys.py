"""The governable keys: one table, with their contract, unit and bounds.

``plan_changes`` turns ``KEY=VALUE`` pairs into the calls a proposal makes, refusing an
unknown key or an out-of-range value before anything is sent. The four fee-split keys are
merged with the current split and become one ``setFeeSplit`` call, which must sum to
10,000 bps. ``compute_share_bps`` is carved from the platform share, so it may never exceed
``platform_bps``: a proposal that breaks this is refused, and one that moves both orders its
calls so that every step keeps it true.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from openledger.chain.addr import is_address, to_checksum_address
from openledger.errors import ValidationError
from openledger.units import OPEN, fmt_open, parse_open

DAY = 86_400
FEE_SPLIT_KEYS = ("platform_bps", "owner_bps", "stakers_bps", "contributors_bps")


@dataclass(frozen=True)
class Key:
    """A governable key: ``contract`` and ``fn`` say which call sets it."""

    name: str
    contract: str  # ProtocolParams, Governor, Timelock, Grants
    fn: str  # setter; "setParam" takes (name, value)
    unit: str  # bps, open, seconds, count, bytes, address, usd6
    low: int = 0
    high: int = 2**256 - 1
    help: str = ""


KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key(
            "platform_bps", "ProtocolParams", "setFeeSplit", "bps", 0, 10_000, "fee share: platform"
        ),
        Key(
            "owner_bps", "ProtocolParams", "setFeeSplit", "bps", 0, 10_000, "fee share: model owner"
        ),
        Key("stakers_bps", "ProtocolParams", "setFeeSplit", "bps", 0, 10_000, "fee share: stakers"),
        Key(
            "contributors_bps",
            "ProtocolParams",
            "setFeeSplit",
            "bps",
            0,
            10_000,
            "fee share: data contributors",
        ),
        Key(
            "min_stake",
            "ProtocolParams",
            "setParam",
            "open",
            0,
            10**9 * OPEN,
            "floor for a contribution's stake",
        ),
        Key(
            "slash_bps",
            "ProtocolParams",
            "setParam",
            "bps",
            0,
            10_000,
            "share of a rejected stake slashed",
        ),
        Key(
            "stake_unlock_delay",
            "ProtocolParams",
            "setParam",
            "seconds",
            0,
            365 * DAY,
            "approved stake locked this long",
        ),
        Key(
            "epoch_length",
            "ProtocolParams",
            "setParam",
            "seconds",
            60,
            30 * DAY,
            "settlement epoch",
        ),
        Key(
            "max_file_bytes",
            "ProtocolParams",
            "setParam",
            "bytes",
            1,
            10**10,
            "upload cap per file",
        ),
        Key(
            "max_files_per_day",
            "ProtocolParams",
            "setParam",
            "count",
            1,
            10**6,
            "upload cap per contributor per day",
        ),
        Key(
            "escrow_withdraw_delay",
            "ProtocolParams",
            "setParam",
            "seconds",
            0,
            30 * DAY,
            "inference credit withdrawal delay",
        ),
        Key(
            "min_deposit",
            "ProtocolParams",
            "setParam",
            "open",
            0,
            10**9 * OPEN,
            "floor for one credit deposit",
        ),
        Key(
            "root_activation_delay",
            "ProtocolParams",
            "setParam",
            "seconds",
            0,
            30 * DAY,
            "delay before a reward root is claimable",
        ),
        Key(
            "max_access_price",
            "ProtocolParams",
            "setParam",
            "open",
            0,
            10**9 * OPEN,
            "bound on a datanet's price per export or training job",
        ),
        Key(
            "compute_share_bps",
            "ProtocolParams",
            "setParam",
            "bps",
            0,
            10_000,
            "fee share of a serving compute provider, carved from platform_bps",
        ),
        Key("treasury", "ProtocolParams", "setTreasury", "address", help="the treasury"),
        Key(
            "voting_delay",
            "Governor",
            "setVotingDelay",
            "seconds",
            0,
            30 * DAY,
            "proposal to snapshot",
        ),
        Key(
            "voting_period",
            "Governor",
            "setVotingPeriod",
            "seconds",
            60,
            60 * DAY,
            "length of the vote",
        ),
        Key(
            "proposal_threshold",
            "Governor",
            "setProposalThreshold",
            "open",
            0,
            10**9 * OPEN,
            "votes needed to propose",
        ),
        Key("quorum_bps", "Governor", "setQuorumBps", "bps", 1, 10_000, "quorum, bps of supply"),
        Key("guardian", "Governor", "setGuardian", "address", help="may cancel any proposal"),
        Key(
            "timelock_delay", "Timelock", "update_delay", "seconds", 0, 30 * DAY, "queue to execute"
        ),
        Key(
            "grants_reference_price",
            "Grants",
            "setReferencePrice",
            "usd6",
            1,
            10**15,
            "US dollars per OPEN for the grant tiers",
        ),
        Key(
            "grants_committee",
            "Grants",
            "setCommittee",
            "address",
            help="may release and cancel grants",
        ),
    )
}

_DURATION = re.compile(r"^(\d+)\s*([smhdw]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": DAY, "w": 7 * DAY}


def _bad(key: str, value: str, why: str, fix: str) -> ValidationError:
    return ValidationError(f"{key}={value}: {why}.", field=key, value=value, fix=fix)


def show_value(key: Key, raw: int | str) -> str:
    """A stored value in the key's unit, for people."""
    if key.unit == "open":
        return f"{fmt_open(int(raw))} OPEN"
    if key.unit == "bps":
        return f"{int(raw)} bps ({int(raw) / 100:g} %)"
    if key.unit == "seconds":
        return f"{int(raw)} s"
    if key.unit == "usd6":
        return f"${int(raw) / 10**6:g}"
    return str(raw)


def parse_value(key: Key, text: str) -> int | str:
    """``text`` in the key's unit (OPEN, bps or %, durations like 2d/6h/90, an address)."""
    text = text.strip()
    if key.unit == "address":
        if not is_address(text):
            raise _bad(key.name, text, "not an address", "give a 0x address of 40 hex digits.")
        return to_checksum_address(text)
    if key.unit == "open":
        value = parse_open(text, field=key.name)
    elif key.unit == "bps" and text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            raise _bad(key.name, text, "not a percentage", "write e.g. 12.5% or 1250.") from None
        value = round(pct * 100)
    elif key.unit == "seconds":
        m = _DURATION.match(text.lower())
        if not m:
            raise _bad(
                key.name, text, "not a duration", "write seconds or e.g. 90s, 15m, 6h, 2d, 1w."
            )
        value = int(m.group(1)) * _SECONDS[m.group(2)]
    elif key.unit == "usd6":
        try:
            value = round(float(text.removeprefix("$")) * 10**6)
        except ValueError:
            raise _bad(
                key.name, text, "not a price", "write US dollars per OPEN, e.g. 0.5."
            ) from None
    else:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise _bad(key.name, text, "not a whole number", "write an integer.") from None
    if not key.low <= value <= key.high:
        raise _bad(
            key.name,
            text,
            f"out of range ({show_value(key, key.low)} to {show_value(key, key.high)})",
            f"choose a value in that range ({key.help}).",
        )
    return value


@dataclass(frozen=True)
class Change:
    """One call of a proposal, with what it means."""

    contract: str
    fn: str
    args: tuple[int | str, ...]
    summary: str


def parse_sets(pairs: list[str]) -> dict[str, str]:
    """``["KEY=VALUE", …]`` → dict; malformed pairs and unknown keys are refused."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise ValidationError(
                f"The change {pair!r} is not KEY=VALUE.",
                field="set",
                value=pair,
                fix="write e.g. platform_bps=500.",
            )
        if key not in KEYS:
            raise ValidationError(
                f"{key!r} is not a governable key.",
                field="set",
                value=key,
                fix=f"use one of: {', '.join(KEYS)}.",
            )
        if key in out:
            raise ValidationError(
                f"{key} is set twice.", field="set", value=key, fix="set each key once."
            )
        out[key] = value
    if not out:
        raise ValidationError(
            "A proposal needs at least one change.",
            field="set",
            fix=f"set at least one KEY=VALUE; the keys are {', '.join(KEYS)}.",
        )
    return out


def plan_changes(sets: dict[str, str], current_split: Callable[[], dict[str, int]]) -> list[Change]:
    """The calls that make ``sets`` true, validated; ``current_split`` gives the fee split
    the proposal starts from (the keys not set keep their current value), and
    ``compute_share_bps`` when it has it (0 otherwise)."""
    changes: list[Change] = []
    split_sets = {k: v for k, v in sets.items() if k in FEE_SPLIT_KEYS}
    current: dict[str, int] = {}
    if split_sets or "compute_share_bps" in sets:
        current = dict(current_split())
    if split_sets:
        split = {k: current[k] for k in FEE_SPLIT_KEYS}
        for k, v in split_sets.items():
            split[k] = int(parse_value(KEYS[k], v))
        total = sum(split[k] for k in FEE_SPLIT_KEYS)
        if total != 10_000:
            shown = " + ".join(f"{k}={split[k]}" for k in FEE_SPLIT_KEYS)
            raise ValidationError(
                f"The fee split would sum to {total} bps ({shown}), not 10000 (100 %).",
                field="fee split",
                value=total,
                fix=f"adjust the shares by {10_000 - total:+d} bps in total; keys not set keep "
                "their current value.",
            )
        args = tuple(split[k] for k in FEE_SPLIT_KEYS)
        changes.append(
            Change(
                "ProtocolParams",
                "setFeeSplit",
                args,
                "fee split " + "/".join(str(a) for a in args) + " bps",
            )
        )
    compute_first = False
    if current:
        old_platform = current["platform_bps"]
        platform = changes[0].args[0] if changes else old_platform
        compute = (
            int(parse_value(KEYS["compute_share_bps"], sets["compute_share_bps"]))
            if "compute_share_bps" in sets
            else current.get("compute_share_bps", 0)
        )
        if compute > int(platform):
            raise ValidationError(
                f"compute_share_bps would be {compute} bps, above platform_bps {platform}: the "
                "compute share is carved from the platform share.",
                field="compute_share_bps",
                value=compute,
                fix=f"keep compute_share_bps at most {platform} bps, or raise platform_bps "
                "in the same proposal.",
            )
        compute_first = compute <= old_platform  # else the split must raise platform first
    for k, v in sets.items():
        if k in FEE_SPLIT_KEYS:
            continue
        key = KEYS[k]
        value = parse_value(key, v)
        args = (key.name, value) if key.fn == "setParam" else (value,)
        change = Change(key.contract, key.fn, args, f"{k} = {show_value(key, value)}")
        if k == "compute_share_bps" and compute_first:
            changes.insert(0, change)
        else:
            changes.append(change)
    return changes
