"""`openledger demo`: the lifecycle so far, on the devnet, with the shipped sample data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openledger.cli import context
from openledger.cli.chain import print_addresses_and_balances
from openledger.cli.format import fmt_open, out
from openledger.errors import NotFoundError, OpenLedgerError
from openledger.factory.runner import run_job
from openledger.factory.tiny_base import TinyBaseConfig, build_tiny_base
from openledger.node import Node
from openledger.units import OPEN

SAMPLES = Path(__file__).resolve().parents[1] / "datanets" / "samples"
DATANET = "open-facts"
MODEL = "open-facts-lora"
DEMO_TRAINING = {
    "epochs": 12,
    "batch_size": 4,
    "rank": 8,
    "alpha": 16,
    "lr": 5e-3,
    "eval_split": 0.25,
    "max_seq_len": 128,
    "checkpoint_every": 10,
}


def demo(
    tiny_steps: Annotated[
        int, typer.Option(help="Pretraining steps of the offline tiny base, if it is built.")
    ] = TinyBaseConfig().steps,
) -> None:
    """Start the devnet; take a datanet through contribution, review and snapshot; train,
    evaluate and publish a LoRA adapter on it."""
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
            DATANET,
            description="short facts about oceans and space",
            validators=[acc.address("bob"), acc.address("carol")],
            quorum=2,
            min_stake=10 * OPEN,
            signer=acc.signer("dave"),
        )
        out.print(f"dave created datanet {DATANET!r} (#{made['id']}); validators bob and carol")

    if not node.snapshots.list(DATANET):
        ids = []
        for who, file in (("alice", "ocean-facts.md"), ("erin", "space-qa.jsonl")):
            r = node.contributions.contribute(
                DATANET, [SAMPLES / file], stake=25 * OPEN, signer=acc.signer(who)
            )
            ids.append(r.contribution_id)
            out.print(
                f"{who} contributed {file}: {r.record_count} record(s), stake 25 OPEN, "
                f"signed manifest {r.manifest_sha[:12]}…, #{r.contribution_id}"
            )
        try:
            node.contributions.contribute(
                DATANET,
                [SAMPLES / "ocean-facts-copy.txt"],
                stake=25 * OPEN,
                signer=acc.signer("frank"),
            )
        except OpenLedgerError as exc:
            out.print(f"frank's copy was refused before anything was written:\n  {exc.message}")
        out.rule("review")
        for cid in ids:
            for v in ("bob", "carol"):
                doc = node.reviews.review(cid, signer=acc.signer(v), approve=True, reason="ok")
            out.print(f"bob and carol approved #{cid}: {doc['status']}")
        out.rule("snapshot")
        snap = node.snapshots.snapshot(DATANET, signer=acc.signer("dave"))
        out.print(
            f"{DATANET}@{snap['version']}: {snap['record_count']} records, root "
            f"{snap['root']} committed on chain (tx {snap['tx_hash'][:12]}…)"
        )
    export = node.settings.home / "exports" / f"{DATANET}.jsonl"
    node.snapshots.export(DATANET, "jsonl", export)
    out.print(f"exported the latest snapshot to {export} (loads with datasets.load_dataset)")
    info = node.datanets.show(DATANET)
    c = info["contributions"]
    out.print(
        f"{DATANET}: {c['approved']} approved, {c['pending']} pending, {c['rejected']} "
        f"rejected; {info['approved_records']} records in "
        f"{len(info['snapshots'])} snapshot(s)"
    )
    for who in ("alice", "erin"):
        bal = node.contracts.token.balance_of(acc.address(who))
        out.print(f"{who}: {fmt_open(bal)} OPEN (stake locked until the unlock delay passes)")
    _factory(node, tiny_steps)
    _attribution(node)


def _factory(node: Node, tiny_steps: int) -> None:
    out.rule("model factory")
    if node.models.list()["total"]:
        m = node.models.list()["items"][0]
        out.print(f"model {m['name']!r} is published already (#{m['id']})")
        return
    base = node.settings.layout.models_dir / "tiny-base"
    if not (base / "config.json").exists():
        out.print("building the offline tiny base (byte-level BPE + small Llama) …")
        build_tiny_base(base, TinyBaseConfig(steps=tiny_steps), progress=True)
    job = node.jobs.submit_train(f"{DATANET}@1", str(base), DEMO_TRAINING)
    done = run_job(node.jobs, node.snapshots, job["id"], progress=True)
    r = done["result"]
    out.print(
        f"job {job['id']}: {r['steps']} steps; held-out perplexity base "
        f"{r['base_eval_ppl']:.1f} → adapter {r['adapter_eval_ppl']:.1f}; loss curve "
        f"{done['loss_curve']}"
    )
    model = node.models.publish(
        job["id"],
        name=MODEL,
        price_in=OPEN // 1000,
        price_out=2 * OPEN // 1000,
        signer=node.accounts.signer("dave"),
    )
    out.print(
        f"dave published {MODEL!r}: ModelRegistry #{model['id']}, adapter sha256 "
        f"{model['adapter_sha256'][:16]}…, snapshot root {model['snapshot_roots'][0][:18]}…, "
        f"prices 0.001 / 0.002 OPEN per 1k tokens"
    )


def _attribution(node: Node) -> None:
    """Index the adapter's training gradients, register the index hash, and attribute an
    answer about the Sun (it is in erin's contribution) to the contributions."""
    from openledger.attribution.plot import plot_shares
    from openledger.cli.attribution import account_names

    out.rule("proof of attribution")
    summary = node.attribution.build(MODEL, method="gradient", progress=True)
    out.print(
        f"gradient index of {MODEL!r}: {summary['examples']} training examples × "
        f"k={summary['proj_dim']}, hash {summary['index_hash'][:18]}…"
    )
    if node.models.get(MODEL)["index_hash"] != summary["index_hash"]:
        node.attribution.register(MODEL, node.accounts.signer("dave"))
        out.print("dave registered the index hash in ModelRegistry")
    prompt = "How long does light from the Sun take to reach the Earth?"
    completion = "About eight minutes and twenty seconds."
    result = node.attribution.attribute(MODEL, prompt, completion, top=3)
    names = account_names(node)
    out.print(f"Q: {prompt}\nA: {completion!r}")
    for s in result.shares:
        out.print(
            f"  {s.weight:6.1%}  contribution #{s.contribution} "
            f"({names.get(s.contributor, s.contributor)})"
        )
    chart = plot_shares(result, node.settings.home / "exports" / "attribution.png", names)
    out.print(f"top example: {result.evidence[0].preview!r}" if result.evidence else "")
    out.print(f"bar chart of the shares: {chart}")
