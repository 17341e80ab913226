"""`openledger demo`: the lifecycle so far, on the devnet, with the shipped sample data."""

from __future__ import annotations

from pathlib import Path

from openledger.cli import context
from openledger.cli.chain import print_addresses_and_balances
from openledger.cli.format import fmt_open, out
from openledger.errors import NotFoundError, OpenLedgerError
from openledger.units import OPEN

SAMPLES = Path(__file__).resolve().parents[1] / "datanets" / "samples"
DATANET = "open-facts"


def demo() -> None:
    """Start the devnet, then run a datanet through contribution, review and snapshot."""
    node = context.node()
    up = node.chain_up()
    out.rule("chain")
    out.print(f"devnet at {up.status.url}, contracts {'deployed' if up.deployed_now else 'found'}")
    print_addresses_and_balances()
    acc = node.accounts

    out.rule("datanet")
    try:
        node.datanets.show(DATANET)
        out.print(f"datanet {DATANET!r} exists already (this home ran the demo before)")
    except NotFoundError:
        made = node.datanets.create(
            DATANET, description="short facts about oceans and space",
            validators=[acc.address("bob"), acc.address("carol")], quorum=2,
            min_stake=10 * OPEN, signer=acc.signer("dave"),
        )  # fmt: skip
        out.print(f"dave created datanet {DATANET!r} (#{made['id']}); validators bob and carol")

    if not node.snapshots.list(DATANET):
        ids = []
        for who, file in (("alice", "ocean-facts.md"), ("erin", "space-qa.jsonl")):
            r = node.contributions.contribute(
                DATANET, [SAMPLES / file], stake=25 * OPEN, signer=acc.signer(who)
            )
            ids.append(r.contribution_id)
            out.print(f"{who} contributed {file}: {r.record_count} record(s), stake 25 OPEN, "
                      f"signed manifest {r.manifest_sha[:12]}…, #{r.contribution_id}")  # fmt: skip
        try:
            node.contributions.contribute(
                DATANET, [SAMPLES / "ocean-facts-copy.txt"], stake=25 * OPEN,
                signer=acc.signer("frank"),
            )  # fmt: skip
        except OpenLedgerError as exc:
            out.print(f"frank's copy was refused before anything was written:\n  {exc.message}")
        out.rule("review")
        for cid in ids:
            for v in ("bob", "carol"):
                doc = node.reviews.review(cid, signer=acc.signer(v), approve=True, reason="ok")
            out.print(f"bob and carol approved #{cid}: {doc['status']}")
        out.rule("snapshot")
        snap = node.snapshots.snapshot(DATANET, signer=acc.signer("dave"))
        out.print(f"{DATANET}@{snap['version']}: {snap['record_count']} records, root "
                  f"{snap['root']} committed on chain (tx {snap['tx_hash'][:12]}…)")  # fmt: skip
    export = node.settings.home / "exports" / f"{DATANET}.jsonl"
    node.snapshots.export(DATANET, "jsonl", export)
    out.print(f"exported the latest snapshot to {export} (loads with datasets.load_dataset)")
    info = node.datanets.show(DATANET)
    c = info["contributions"]
    out.print(f"{DATANET}: {c['approved']} approved, {c['pending']} pending, {c['rejected']} "
              f"rejected; {info['approved_records']} records in "
              f"{len(info['snapshots'])} snapshot(s)")  # fmt: skip
    for who in ("alice", "erin"):
        bal = node.contracts.token.balance_of(acc.address(who))
        out.print(f"{who}: {fmt_open(bal)} OPEN (stake locked until the unlock delay passes)")
