"""`openledger demo`: the whole lifecycle on the devnet, with the shipped sample data.

Datanet → review (one contribution rejected and slashed) → snapshot → tiny base → LoRA
training → publish → attribution index → OpenLoRA serving → paid inferences from a user's
escrow credit → epoch settlement → claims → a table of what each contributor earned,
claimed and lost, checked against the chain. A second run on the same home skips what
exists and does another round of paid inferences, settlement and claims.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openledger.cli import context
from openledger.cli import demo_steps as steps
from openledger.cli.chain import print_addresses_and_balances
from openledger.cli.format import fmt_open, out
from openledger.errors import NotFoundError, OpenLedgerError
from openledger.node import Node
from openledger.units import OPEN

SAMPLES = Path(__file__).resolve().parents[1] / "datanets" / "samples"
DATANET = "open-facts"
MODEL = steps.MODEL
#: (contributor, sample file, stake in OPEN): three kinds of knowledge, three file formats.
CONTRIBUTORS = (
    ("alice", "ocean-facts.md", 25),
    ("erin", "space-qa.jsonl", 25),
    ("heidi", "insects-qa.csv", 25),
)
SPAM = ("frank", "promo-spam.txt", 20)  # low quality: the validators reject it
#: Long enough for the 1 M-parameter tiny base to learn its thirteen records by heart (about
#: half a minute on 2 cores): every record trains (eval_split 0), so every answer can be traced.
DEMO_TRAINING = {
    "epochs": 160,
    "batch_size": 4,
    "rank": 16,
    "alpha": 32,
    "lr": 1e-2,
    "target_modules": "all-linear",
    "eval_split": 0.0,
    "patience": None,
    "max_seq_len": 128,
    "checkpoint_every": 200,
}
PRICE_IN, PRICE_OUT = OPEN, 2 * OPEN  # per 1k prompt / completion tokens


def demo(
    tiny_steps: Annotated[
        int | None,
        typer.Option(
            help="Pretraining steps of the offline tiny base, if it is built (default: "
            "TinyBaseConfig's).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the devnet and run the lifecycle: datanet, review and slashing, snapshot,
    training, publishing, attribution, serving, paid inference, settlement and claims."""
    node = context.node()
    up = node.chain_up()
    out.rule("chain")
    out.print(f"devnet at {up.status.url}, contracts {'deployed' if up.deployed_now else 'found'}")
    print_addresses_and_balances()
    try:
        _datanet(node)
        _factory(node, tiny_steps)
        _attribution(node)
        steps.ledger_round(node, DATANET)
    finally:
        node.serving.close()
        node.ledger.close()


def _datanet(node: Node) -> None:
    acc = node.accounts
    out.rule("datanet")
    try:
        node.datanets.show(DATANET)
        out.print(f"datanet {DATANET!r} exists already (this home ran the demo before)")
    except NotFoundError:
        made = node.datanets.create(
            DATANET,
            description="short facts about oceans, space and insects",
            validators=[acc.address("bob"), acc.address("carol")],
            quorum=2,
            min_stake=10 * OPEN,
            signer=acc.signer("dave"),
        )
        out.print(f"dave created datanet {DATANET!r} (#{made['id']}); validators bob and carol")

    if not node.snapshots.list(DATANET):
        _contribute_review_snapshot(node)
    else:
        out.print("snapshot @1 exists: skipping contribution, review and snapshot")
    export = node.settings.home / "exports" / f"{DATANET}.jsonl"
    owner = node.datanets.show(DATANET)["owner"]  # reads free once the datanet is priced
    node.snapshots.export(DATANET, "jsonl", export, account=owner)
    out.print(f"exported the latest snapshot to {export} (loads with datasets.load_dataset)")
    info = node.datanets.show(DATANET)
    c = info["contributions"]
    out.print(
        f"{DATANET}: {c['approved']} approved, {c['pending']} pending, {c['rejected']} "
        f"rejected; {info['approved_records']} records in "
        f"{len(info['snapshots'])} snapshot(s)"
    )


def _contribute_review_snapshot(node: Node) -> None:
    acc, token = node.accounts, node.contracts.token
    ids = []
    for who, file, stake in CONTRIBUTORS:
        r = node.contributions.contribute(
            DATANET, [SAMPLES / file], stake=stake * OPEN, signer=acc.signer(who)
        )
        ids.append(r.contribution_id)
        out.print(
            f"{who} contributed {file}: {r.record_count} record(s), stake {stake} OPEN, "
            f"signed manifest {r.manifest_sha[:12]}…, #{r.contribution_id}"
        )
    try:
        node.contributions.contribute(
            DATANET, [SAMPLES / "ocean-facts-copy.txt"], stake=25 * OPEN, signer=acc.signer("frank")
        )
    except OpenLedgerError as exc:
        out.print(f"frank's copy was refused before anything was written:\n  {exc.message}")
    spammer, file, stake = SPAM
    frank_before = token.balance_of(acc.address(spammer))
    bad = node.contributions.contribute(
        DATANET, [SAMPLES / file], stake=stake * OPEN, signer=acc.signer(spammer)
    )
    out.print(
        f"{spammer} contributed {file}: {bad.record_count} record(s) of advertising, "
        f"stake {stake} OPEN, #{bad.contribution_id}"
    )

    out.rule("review")
    for cid in ids:
        for v in ("bob", "carol"):
            doc = node.reviews.review(cid, signer=acc.signer(v), approve=True, reason="ok")
        out.print(f"bob and carol approved #{cid}: {doc['status']}")
    reason = "advertising spam: no knowledge in it"
    for v in ("bob", "carol"):
        doc = node.reviews.review(
            bad.contribution_id, signer=acc.signer(v), approve=False, reason=reason
        )
    slash_bps = node.contracts.params.snapshot().slash_bps
    slashed = int(doc["slashed"])
    out.print(
        f"bob and carol rejected #{bad.contribution_id} ({reason!r}): {doc['status']}; "
        f"slashed {fmt_open(slashed)} OPEN ({slash_bps / 100:g}% of the stake, "
        "ProtocolParams.slash_bps) to the treasury"
    )
    back = node.reviews.withdraw(bad.contribution_id, signer=acc.signer(spammer))
    lost = frank_before - token.balance_of(acc.address(spammer))
    if lost != slashed:
        raise steps.CheckFailed([f"{spammer} lost {fmt_open(lost)} OPEN, slashed {slashed}"])
    out.print(
        f"{spammer} withdrew the unslashed {fmt_open(int(back['amount']))} OPEN; his balance "
        f"is down exactly the slashed {fmt_open(lost)} OPEN (checked on chain)"
    )

    out.rule("snapshot")
    snap = node.snapshots.snapshot(DATANET, signer=acc.signer("dave"))
    out.print(
        f"{DATANET}@{snap['version']}: {snap['record_count']} records, root "
        f"{snap['root']} committed on chain (tx {snap['tx_hash'][:12]}…)"
    )
    for who, _, stake in CONTRIBUTORS:
        bal = token.balance_of(acc.address(who))
        out.print(f"{who}: {fmt_open(bal)} OPEN ({stake} OPEN staked until the unlock delay)")


def _factory(node: Node, tiny_steps: int | None) -> None:
    from openledger.factory.runner import run_job
    from openledger.factory.tiny_base import build_tiny_base
    from openledger.factory.tiny_config import TinyBaseConfig

    out.rule("model factory")
    if node.models.list()["total"]:
        m = node.models.list()["items"][0]
        out.print(f"model {m['name']!r} is published already (#{m['id']}): skipping training")
        return
    base = node.settings.layout.models_dir / "tiny-base"
    if not (base / "config.json").exists():
        out.print("building the offline tiny base (byte-level BPE + small Llama) …")
        config = TinyBaseConfig() if tiny_steps is None else TinyBaseConfig(steps=tiny_steps)
        build_tiny_base(base, config, progress=True)
    job = node.jobs.submit_train(f"{DATANET}@1", str(base), DEMO_TRAINING)
    done = run_job(node.jobs, node.snapshots, job["id"], progress=True)
    r = done["result"]
    losses = [m["train_loss"] for m in node.jobs.metrics(job["id"]) if m.get("train_loss")]
    out.print(
        f"job {job['id']}: {r['steps']} steps on all {r['train_examples']} records (none held "
        f"out); training loss {losses[0]:.2f} → {losses[-1]:.3f}; loss curve "
        f"{done['loss_curve']}"
    )
    model = node.models.publish(
        job["id"],
        name=MODEL,
        price_in=PRICE_IN,
        price_out=PRICE_OUT,
        signer=node.accounts.signer("dave"),
    )
    out.print(
        f"dave published {MODEL!r}: ModelRegistry #{model['id']}, adapter sha256 "
        f"{model['adapter_sha256'][:16]}…, snapshot root {model['snapshot_roots'][0][:18]}…, "
        f"prices {fmt_open(PRICE_IN)} / {fmt_open(PRICE_OUT)} OPEN per 1k prompt / "
        "completion tokens"
    )


def _attribution(node: Node) -> None:
    """Index what the adapter was trained on (its policy's indexes: token provenance by
    default), register the index hash, and attribute an answer about the Sun (it is in
    erin's contribution) to the contributions."""
    from openledger.attribution.plot import plot_shares

    out.rule("proof of attribution")
    summary = node.attribution.build(MODEL, progress=True)
    out.print(
        f"{summary['method']} index of {MODEL!r}: {summary['examples']} training examples, "
        f"hash {summary['index_hash'][:18]}…"
    )
    if node.models.get(MODEL)["index_hash"] != summary["index_hash"]:
        node.attribution.register(MODEL, node.accounts.signer("dave"))
        out.print("dave registered the index hash in ModelRegistry")
    prompt = "How long does light from the Sun take to reach the Earth?"
    completion = "About eight minutes and twenty seconds."
    result = node.attribution.attribute(MODEL, prompt, completion, top=3)
    names = steps.names_of(node)
    out.print(f"Q: {prompt}\nA: {completion!r}")
    for s in result.shares:
        out.print(
            f"  {s.weight:6.1%}  contribution #{s.contribution} "
            f"({names.get(s.contributor, s.contributor)})"
        )
    out.print(f"  {result.unattributed:6.1%}  unattributed (paid pro rata to approved records)")
    chart = plot_shares(result, node.settings.home / "exports" / "attribution.png", names)
    out.print(f"top evidence: {result.evidence[0].preview!r}" if result.evidence else "")
    out.print(f"bar chart of the shares: {chart}")
