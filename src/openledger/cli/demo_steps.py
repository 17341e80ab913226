"""The money half of `openledger demo`: paid inferences from a user's escrow credit, an
agent over the model that retrieves from the datanet (the user pays its price on top), a
data access fee (the datanet's owner prices exports, the user pays for one), the epoch that
settles them, the claims, and a table of earnings checked against the chain.

Everything goes through the node's services (``node.escrow``, ``node.paid``,
``node.epochs``, ``node.rewards``, ``node.auditor``), the same calls the API and the ledger
commands make; the demo only adds the devnet clock fast-forward and the checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from openledger.cli.format import fmt_open, out
from openledger.errors import ConflictError, NotFoundError, OpenLedgerError
from openledger.node import Node
from openledger.units import OPEN

MODEL = "open-facts-lora"
USER = "grace"
DEPOSIT = 10 * OPEN
#: the datanet's access prices (its owner sets them; contributors and the owner read free)
EXPORT_PRICE, TRAIN_PRICE = 2 * OPEN, 5 * OPEN
MAX_TOKENS = 24
DEVNET_CHAIN_ID = 31337
#: the agent the model's owner runs over the model, retrieving from the datanet
AGENT = "research-assistant"
AGENT_PRICE = OPEN // 20  # 0.05 OPEN per call, to its owner
AGENT_FUND = OPEN  # its wallet's credit (the minimum deposit): pays for calls it makes
AGENT_K = 2
AGENT_QUESTION = "How long does light from the Sun take to reach the Earth?"


@dataclass(frozen=True)
class Question:
    """A question of the demo, whose data holds the answer, and its key fact."""

    prompt: str
    knows: str  # the contributor whose record holds the answer
    fact: str  # what a right answer contains
    chat: bool = False  # the record is a chat: ask through the chat template


QUESTIONS = (
    Question("The Mariana Trench in the western Pacific reaches", "alice", "eleven kilometres"),
    Question("Coral reefs cover less than", "alice", "one percent"),
    Question("The Gulf Stream carries warm water", "alice", "Gulf of Mexico"),
    Question("How long does light from the Sun take to reach the Earth?", "erin", "eight minutes"),
    Question("Which planet has the longest day?", "erin", "Venus"),
    Question(
        "Why does the Moon always show us the same face?", "erin", "tidally locked", chat=True
    ),
    Question("How do honeybees tell each other where the flowers are?", "heidi", "dance"),
    Question("Why do fireflies glow?", "heidi", "chemical reaction"),
    Question("Why do crickets chirp?", "heidi", "scraper"),
)


class CheckFailed(OpenLedgerError):
    """The demo's numbers do not match the chain."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "the demo's earnings do not match the chain:\n  " + "\n  ".join(problems),
            field="demo",
            fix="this is a bug: report it with the output above (`openledger audit --epoch N` "
            "recomputes an epoch from its receipts).",
        )


def names_of(node: Node) -> dict[str, str]:
    """address → account name for the accounts this node holds."""
    from openledger.cli.attribution import account_names

    return account_names(node)


@dataclass
class Row:
    """One account in the closing table."""

    address: str
    name: str
    role: str
    contributions: list[str] = field(default_factory=list)
    attributed: int = 0  # wei earned by attribution weight (role "contributor")
    parts: dict[str, int] = field(default_factory=dict)  # EARNING_PARTS' header -> wei
    earned: int = 0  # settled, cumulative
    claimed: int = 0  # RewardDistributor.claimed, cumulative
    slashed: int = 0  # DatanetRegistry, summed over the account's contributions
    paid_now: int = 0  # claimed by this run
    delta_now: int = 0  # the account's OPEN balance change over this run's claim


#: The columns of the second earnings table, which breaks each account's "OPEN earned" down
#: by where it came from (what is left is inference fees), each read from
#: ``node.rewards.earnings(account)``: (header, "by_role" | "by_source", key). Each kind of
#: earning is one line here (a compute provider's share would be one more).
EARNING_PARTS = (
    ("access fees", "by_source", "access"),
    ("agent fees", "by_role", "agent"),
    ("compute", "by_role", "compute"),
)


def ledger_round(node: Node, datanet: str) -> None:
    """Serve, pay, settle, claim, tabulate and check (one round; rerunnable)."""
    from openledger.cli import demo_provider

    _serve(node)
    with demo_provider.running(node, MODEL):
        _pay(node)
        _agent(node, datanet)
    _access(node, datanet)
    epoch = _settle(node)
    rows = _rows(node, datanet)
    _claim(node, rows)
    _table(rows)
    _check(node, rows, epoch)
    _verify(node, epoch)
    chart = _chart(rows, node.settings.home / "exports" / "earnings.png")
    out.print(f"bar chart of earned, claimed and slashed OPEN: {chart}")
    out.print(
        "the node home is left in place: `openledger serve` shows this state "
        "(`openledger rewards NAME`, `openledger audit --epoch N` check it again)"
    )


def _serve(node: Node) -> None:
    from openledger.serving.service import pick_device

    out.rule("serving (OpenLoRA)")
    engine = node.serving.engine  # loads the base once; adapters are served from it
    device, dtype = pick_device(node.settings.serve_device)
    names = [m["name"] for m in node.serving.catalogue()]
    out.print(
        f"OpenLoRA engine: base {node.serving.base} on {device.type} ({str(dtype)[6:]}), "
        f"context {engine.max_ctx} tokens; serving {len(names)} adapter(s): {', '.join(names)}"
    )


def _pay(node: Node) -> None:
    acc = node.accounts
    user = acc.address(USER)
    out.rule("paid inference")
    before = node.ledger.credit(user)
    done = node.escrow.deposit(acc.signer(USER), DEPOSIT)  # approve, deposit, sync the event
    out.print(
        f"{USER} approved the InferenceEscrow and deposited {fmt_open(DEPOSIT)} OPEN (tx "
        f"{done['tx_hash'][:12]}…); the node synced the Deposited event: credit "
        f"{fmt_open(int(before['available']))} → {fmt_open(int(done['available']))} OPEN"
    )
    out.print(
        "the offline tiny base has about 1 M parameters and writes broken English; what "
        "matters here is that every answer is paid for, receipted and traced to the data"
    )
    names = names_of(node)
    spent = 0
    facts = tops = 0
    for q in QUESTIONS:
        if q.chat:
            pc = node.paid.chat(
                user, MODEL, [{"role": "user", "content": q.prompt}], max_tokens=MAX_TOKENS
            )
        else:
            pc = node.paid.complete(user, MODEL, q.prompt, max_tokens=MAX_TOKENS)
        fee = int(pc.receipt.body["fee"])
        spent += fee
        shares = pc.attribution.shares[:3] if pc.attribution else []
        who = (
            ", ".join(
                f"{names.get(s.contributor, s.contributor[:10])} {s.weight:.0%}" for s in shares
            )
            or "none (paid by records)"
        )
        compute = pc.receipt.body.get("compute")
        served = f", served by {names.get(compute['provider'], 'a provider')}" if compute else ""
        unattributed = pc.attribution.unattributed if pc.attribution else 1.0
        answer = " ".join(pc.text.split())
        fact = q.fact.lower() in answer.lower()
        top = bool(shares) and names.get(shares[0].contributor) == q.knows
        facts, tops = facts + fact, tops + top
        out.print(
            f"[bold]{USER}[/] → {q.prompt!r}{' (chat)' if q.chat else ''} (in {q.knows}'s "
            f"data)\n  {answer[:90]!r}  [{'green' if fact else 'red'}]{q.fact!r} "
            f"{'✓' if fact else '✗'}[/]\n"
            f"  {pc.prompt_tokens}+{pc.completion_tokens} tokens{served}, fee "
            f"{fmt_open(fee)} OPEN, receipt {node.ledger.public_id(pc.receipt.seq)} signed; "
            f"attribution: {who}; unattributed {unattributed:.0%}",
            highlight=False,
        )
    left = node.ledger.credit(user)
    out.print(
        f"{len(QUESTIONS)} paid completions cost {fmt_open(spent)} OPEN; {USER} has "
        f"{fmt_open(int(left['available']))} OPEN of credit left"
    )
    out.print(
        f"answers holding the key fact of the record they came from: {facts}/{len(QUESTIONS)}; "
        f"the record's contributor has the largest share: {tops}/{len(QUESTIONS)}"
    )


def _agent(node: Node, datanet: str) -> None:
    """The model's owner runs an agent over the model that retrieves from the datanet and
    funds its wallet; the user calls it and pays the model's fee plus the agent's price
    (docs/agents.md), through the same runner as the web app's playground."""
    from openledger.agents.config import AgentConfig
    from openledger.agents.runner import AgentRunner

    acc = node.accounts
    names = names_of(node)
    out.rule("agent")
    owner = node.models.get(MODEL)["owner"]
    owner_name = names.get(owner, owner[:10])
    try:
        agent = node.agents.get(AGENT)
        out.print(f"agent/{AGENT} exists already (AgentRegistry #{agent['id']})")
    except NotFoundError:
        config = AgentConfig(
            model=MODEL,
            system_prompt="Answer from the context.",
            max_tokens=MAX_TOKENS,
            retrieval=(datanet,),
            retrieval_k=AGENT_K,
        )
        agent = node.agents.create(AGENT, config, price=AGENT_PRICE, signer=acc.signer(owner_name))
        out.print(
            f"{owner_name} created agent/{AGENT} (AgentRegistry #{agent['id']}): {MODEL} with "
            f"the top {AGENT_K} passages of {datanet}'s latest snapshot in its prompt, "
            f"{fmt_open(AGENT_PRICE)} OPEN per call on top of the model's fee; its wallet "
            f"{agent['wallet']}"
        )
    if int(node.agents.wallet(AGENT)["available"]) < AGENT_FUND:
        funded = node.agents.fund(AGENT, AGENT_FUND, signer=acc.signer(owner_name))
        out.print(
            f"{owner_name} funded its wallet with {fmt_open(AGENT_FUND)} OPEN of credit "
            f"(depositFor, tx {funded['tx_hash'][:12]}…): it pays for the calls the agent "
            "makes to other models and agents (this one makes none)"
        )
    runner = AgentRunner(node.agents, node.paid)
    msgs = [{"role": "user", "content": AGENT_QUESTION}]
    run = runner.prepare(node.agents.resolve(AGENT), msgs)
    pc = runner.answer(acc.address(USER), run, msgs)
    fee, answer = int(pc.receipt.body["fee"]), " ".join(pc.text.split())
    out.print(
        f"[bold]{USER}[/] → agent/{AGENT}: {AGENT_QUESTION!r}\n  {answer[:90]!r}", highlight=False
    )
    for i, p in enumerate(run.passages, start=1):
        src = p.source
        out.print(
            f"  [{i}] {' '.join(p.text.split())[:60]!r}: {src.datanet}@{src.version} record "
            f"{src.record}, contribution #{src.contribution} "
            f"({names.get(src.contributor, src.contributor[:10])})",
            highlight=False,
        )
    out.print(
        f"  {pc.prompt_tokens}+{pc.completion_tokens} tokens, fee {fmt_open(fee)} OPEN = the "
        f"model's {fmt_open(fee - AGENT_PRICE)} + the agent's price {fmt_open(AGENT_PRICE)} "
        f"(to {owner_name}); receipt {node.ledger.public_id(pc.receipt.seq)} names the "
        f"{len(run.passages)} record(s) retrieved"
    )


def _access(node: Node, datanet: str) -> None:
    """The datanet's owner prices it; the user, who neither owns nor contributed to it, pays
    for an export before any data leaves (once: a paid export covers later ones)."""
    acc, access = node.accounts, node.access
    out.rule("data access fees")
    owner = node.datanets.show(datanet)["owner"]
    owner_name = names_of(node).get(owner, owner[:10])
    prices = access.prices(datanet)
    if (int(prices["export"]), int(prices["train"])) != (EXPORT_PRICE, TRAIN_PRICE):
        plan = access.plan_set_prices(datanet, export=EXPORT_PRICE, train=TRAIN_PRICE, owner=owner)
        plan.run(acc.signer(owner_name))
    out.print(
        f"{owner_name} (the owner) priced {datanet}: {fmt_open(EXPORT_PRICE)} OPEN per snapshot "
        f"export, {fmt_open(TRAIN_PRICE)} OPEN per training job (at most max_access_price, "
        f"{fmt_open(int(prices['max_access_price']))} OPEN); its contributors and owner read free"
    )
    user = acc.address(USER)
    quote = access.quote(datanet, None, "export", user)
    if quote["due"]:
        paid = access.plan_pay(datanet, None, "export", user).run(acc.signer(USER))
        out.print(
            f"{USER} paid {fmt_open(int(paid['amount']))} OPEN to export {datanet}"
            f"@{paid['version']} (access #{paid['access']}, tx {paid['tx_hash'][:12]}…): "
            "to its contributors and stakers at this epoch"
        )
    else:
        out.print(
            f"{USER} paid for {datanet}@{quote['version']} already (access "
            f"#{quote['access']}): exports it again free"
        )
    path = node.settings.home / "exports" / f"{datanet}-{USER}.jsonl"
    node.snapshots.export(f"{datanet}@{quote['version']}", "jsonl", path, account=user)
    out.print(f"{USER} exported it to {path}")


def _fast_forward(node: Node, why: str) -> None:
    """On the devnet, move the chain clock past a pending root's activation delay."""
    _, _, ready_at = node.contracts.rewards.pending_root()
    if not ready_at:
        return
    wait = ready_at - node.client.timestamp()
    if wait <= 0:
        return
    if node.settings.chain_id != DEVNET_CHAIN_ID:
        raise ConflictError(
            f"the reward root is in its activation delay for {wait} s more.",
            field="epoch",
            value=ready_at,
            fix="the demo fast-forwards only a devnet's clock: claim after that time "
            "(`openledger claim --as NAME`).",
        )
    node.client.rpc("evm_increaseTime", [wait + 1])
    node.client.rpc("evm_mine")
    out.print(
        f"[yellow]devnet only:[/] fast-forwarded the chain clock by {wait + 1} s "
        f"(evm_increaseTime + evm_mine) {why}; on a real chain this waits "
        f"ProtocolParams.root_activation_delay ({node.params.current().root_activation_delay}"
        " s), during which governance can disable a bad root"
    )


def _settle(node: Node) -> int | None:
    out.rule("epoch settlement")
    _fast_forward(
        node,
        "because the last epoch's root is in its activation delay on the chain clock (a "
        "restarted devnet forgets earlier fast-forwards)",
    )
    doc = node.epochs.close()
    if doc.get("epoch") is None:
        out.print("no unsettled receipts: nothing to settle")
        latest = node.epochs.latest_settled()
        return latest.number if latest else None
    fees = f" and {doc['accesses']} access fee(s)" if doc.get("accesses") else ""
    out.print(
        f"epoch {doc['epoch']} {doc['status']}: {doc['receipts']} receipts{fees}, fees "
        f"{fmt_open(int(doc['fees']))} OPEN collected from the escrow to the "
        f"RewardDistributor; root {doc['root'][:18]}… of {doc['accounts']} accounts' "
        f"cumulative earnings ({fmt_open(int(doc['total']))} OPEN) posted (tx "
        f"{doc['post_tx'][:12]}…)"
    )
    _fast_forward(node, "so the new root becomes claimable now")
    report = node.auditor.audit(doc["epoch"])
    out.print(
        f"audit of epoch {doc['epoch']}: {report.receipts} receipts re-verified and the split "
        f"recomputed; root and receipts head match the chain: {'ok' if report.ok else 'FAILED'}"
    )
    if not report.ok:
        raise CheckFailed(report.problems)
    return int(doc["epoch"])


def _rows(node: Node, datanet: str) -> list[Row]:
    names = names_of(node)
    rows: dict[str, Row] = {}
    listing = node.reviews.listing(datanet, limit=500)["items"]
    for c in sorted(listing, key=lambda c: c["id"]):
        addr = c["contributor"]
        row = rows.setdefault(addr, Row(addr, names.get(addr, addr[:10]), "contributor"))
        row.contributions.append(f"#{c['id']} {c['status']}")
        row.slashed += node.contracts.datanets.contribution(c["id"]).slashed
    owner = node.models.get(MODEL)["owner"]
    treasury = node.params.current().treasury
    timelock = node.contracts.timelock
    if timelock is not None and treasury == timelock.address:
        names.setdefault(treasury, "Timelock")  # governance holds the treasury
    dn_owner = node.datanets.show(datanet)["owner"]  # earns the owner's part of access fees
    for addr, role in (
        (owner, "model owner"),
        (dn_owner, "datanet owner"),
        (treasury, "treasury (platform)"),
    ):
        if addr in rows and rows[addr].role == "model owner" and role == "datanet owner":
            rows[addr].role = "model + datanet owner"  # the table stays within 160 columns
        elif addr in rows:
            rows[addr].role += f" + {role}"
        else:
            rows[addr] = Row(addr, names.get(addr, addr[:10]), role)
    try:  # the agent's owner earns its price
        agent_owner = node.agents.get(AGENT)["owner"]
        if agent_owner not in rows:
            rows[agent_owner] = Row(
                agent_owner, names.get(agent_owner, agent_owner[:10]), "agent owner"
            )
    except NotFoundError:
        pass
    registry = node.contracts.providers  # compute providers earn their share of what they serve
    for p in registry.providers() if registry is not None else []:
        if p.address in rows:
            rows[p.address].role += " + compute provider"
        elif p.registered_at:
            rows[p.address] = Row(
                p.address, names.get(p.address, p.address[:10]), "compute provider"
            )
    for row in rows.values():
        e = node.rewards.earnings(row.address)
        row.earned = int(e["settled"])
        row.attributed = int(e["by_role"].get("contributor", "0"))
        row.parts = {header: int(e[by].get(key, "0")) for header, by, key in EARNING_PARTS}
    return list(rows.values())


def _claim(node: Node, rows: list[Row]) -> None:
    out.rule("claims")
    token, rewards = node.contracts.token, node.contracts.rewards
    for row in rows:
        if int(node.rewards.claimable(row.address)["claimable"]) == 0:
            out.print(f"{row.name}: nothing to claim")
            continue
        # anyone may claim for an account (the OPEN goes to the account): the operator sends
        # the claim of an account this node holds no key for, such as the Timelock (treasury)
        sender = row.name if row.name in node.accounts.names() else "operator"
        before = token.balance_of(row.address)
        done = node.rewards.claim(row.address, node.accounts.signer(sender))
        row.paid_now = int(done["paid"])
        row.delta_now = token.balance_of(row.address) - before
        by = "" if sender == row.name else f", sent by {sender} on its behalf"
        out.print(
            f"{row.name} claimed {fmt_open(row.paid_now)} OPEN (cumulative "
            f"{fmt_open(int(done['cumulative']))}, Merkle proof of {len(done['proof'])} "
            f"hashes, tx {done['tx_hash'][:12]}…{by})"
        )
    for row in rows:
        row.claimed = rewards.claimed(row.address)


def _table(rows: list[Row]) -> None:
    out.rule("earnings")
    attributed = sum(r.attributed for r in rows) or 1
    t = Table(title="OPEN by account (cumulative over all settled epochs)")
    for col in ("account", "role", "contributions", "attributed share"):
        t.add_column(col)
    for col in ("OPEN earned", "OPEN claimed", "OPEN slashed"):
        t.add_column(col, justify="right")
    contributors = [r for r in rows if r.contributions]
    others = [r for r in rows if not r.contributions]
    for i, r in enumerate(contributors + others):
        t.add_row(
            r.name,
            r.role,
            ", ".join(r.contributions) or "—",
            f"{r.attributed / attributed:.1%}" if r.contributions else "—",
            fmt_open(r.earned),
            fmt_open(r.claimed),
            fmt_open(r.slashed) if r.contributions else "—",
            end_section=i == len(contributors) - 1,
        )
    out.print(t)
    # where each account's earnings came from: inference fees, then one column per kind of
    # earning in EARNING_PARTS (each row adds up to OPEN earned)
    by = Table(title="OPEN earned, by where it came from")
    by.add_column("account")
    for col in ("inference fees", *(h for h, _, _ in EARNING_PARTS), "OPEN earned"):
        by.add_column(col, justify="right")
    for i, r in enumerate(contributors + others):
        parts = [r.parts.get(h, 0) for h, _, _ in EARNING_PARTS]
        by.add_row(
            r.name,
            fmt_open(r.earned - sum(parts)),
            *(fmt_open(p) for p in parts),
            fmt_open(r.earned),
            end_section=i == len(contributors) - 1,
        )
    out.print(by)
    out.print(
        "attributed share: the account's part of the fees paid by attribution weight. "
        "Contributors earn that, plus the stakers' part pro rata to approved stake and the "
        "unattributed rest pro rata to approved records; a rejected contribution earns "
        "nothing. Inference fees: the model's part of each fee (owner, stakers, "
        "contributors, platform). Access fees: the datanet's fees for exports and training, "
        "split the same way (owner, stakers by stake, contributors by approved records, "
        "platform). Agent fees: the price per call of the agents the account owns, paid on "
        "top of the model's fee. The treasury also received the slashed stake."
    )


def _check(node: Node, rows: list[Row], epoch: int | None) -> None:
    """Every number of the table against the chain; raises CheckFailed on a mismatch."""
    c = node.contracts
    problems: list[str] = []
    if epoch is not None:
        claimable = {r.address: node.rewards.claimable(r.address) for r in rows}
    for r in rows:
        if r.claimed != c.rewards.claimed(r.address):
            problems.append(f"{r.name}: claimed {r.claimed} ≠ RewardDistributor.claimed")
        if epoch is not None and int(claimable[r.address]["cumulative"]) != r.earned:
            problems.append(f"{r.name}: earned {r.earned} ≠ its leaf in the root on chain")
        if r.claimed != r.earned:
            problems.append(f"{r.name}: claimed {r.claimed} ≠ earned {r.earned}")
        if r.delta_now != r.paid_now:
            problems.append(f"{r.name}: balance moved {r.delta_now}, claim paid {r.paid_now}")
    if epoch is not None:
        _, total, _, _ = c.rewards.epochs(c.rewards.active_epoch())
        held = c.token.balance_of(c.rewards.address)
        if held != total - c.rewards.total_claimed():
            problems.append(f"RewardDistributor holds {held}, owes {total} − claimed")
        if sum(r.earned for r in rows) != total:
            problems.append(f"the table's earnings sum to {sum(r.earned for r in rows)} ≠ {total}")
    user = node.accounts.address(USER)
    credit = node.ledger.credit(user)
    escrowed = int(credit["deposited"]) - int(credit["withdrawn"]) - int(credit["collected"])
    if c.escrow.balance_of(user) != escrowed:
        problems.append(f"{USER}: escrow balance {c.escrow.balance_of(user)} ≠ {escrowed}")
    if problems:
        raise CheckFailed(problems)
    out.print(
        "[bold green]check passed:[/] for every account, claimed = RewardDistributor.claimed "
        "= earned = its leaf in the root on chain; each claim moved its OPEN balance by "
        "exactly what it paid; slashed = DatanetRegistry's slashed stake; the distributor "
        f"holds exactly what is unclaimed; {USER}'s escrow balance = deposits − collected fees"
    )


def _verify(node: Node, epoch: int | None) -> None:
    """Anyone can check the attribution: one receipt, then the whole epoch, recomputed from
    the public artefacts (what `openledger verify receipt` and `audit --attribution` do)."""
    from openledger.ledger.verification.proofs import LocalSource, audit_attribution, epoch_receipts
    from openledger.ledger.verification.verify import verify_receipt

    if epoch is None:
        return
    out.rule("verifying the attribution")
    seqs = epoch_receipts(node, epoch)
    if not seqs:
        return
    rid = node.ledger.public_id(seqs[0])
    v = verify_receipt(LocalSource(node), rid)
    for c in v.checks:
        out.print(
            f"  {'[green]✓[/]' if c.ok else '[red]✗[/]'} {c.name}: {c.detail}", highlight=False
        )
    out.print(
        f"`openledger verify receipt {rid}`: {'match' if v.ok else 'MISMATCH'} — the index "
        f"rebuilt from the adapter and snapshot on chain, {len(v.weights)} weights recomputed "
        f"to the part per billion in {v.seconds:.1f} s"
    )
    report = audit_attribution(node, epoch)
    out.print(
        f"`openledger audit --epoch {epoch} --attribution`: {report['checked']} of "
        f"{report['receipts']} receipts recomputed, "
        + ("every one matches" if report["ok"] else f"{len(report['failed'])} DIFFER")
    )
    if not (v.ok and report["ok"]):
        raise CheckFailed(
            [f"{f['receipt']}: {f['checks']}" for f in report["failed"]] or [str(v.to_dict())]
        )


def _chart(rows: list[Row], out_png: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [f"{r.name} ({r.role.split(' (')[0]})" for r in rows]
    ys = range(len(rows))[::-1]
    fig = Figure(figsize=(7, 0.6 * len(rows) + 1.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.barh(
        [y + 0.2 for y in ys],
        [r.earned / OPEN for r in rows],
        0.4,
        color="tab:green",
        label="earned (claimed)",
    )
    ax.barh(
        [y - 0.2 for y in ys],
        [r.slashed / OPEN for r in rows],
        0.4,
        color="tab:red",
        label="slashed",
    )
    for y, r in zip(ys, rows, strict=True):
        if r.earned:
            ax.text(r.earned / OPEN, y + 0.2, f" {fmt_open(r.earned)[:8]}", va="center")
        if r.slashed:
            ax.text(r.slashed / OPEN, y - 0.2, f" {fmt_open(r.slashed)}", va="center")
    ax.set_yticks(list(ys), labels)
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlim(
        0, max([r.earned / OPEN for r in rows] + [r.slashed / OPEN for r in rows] + [1]) * 4
    )
    ax.set_xlabel("OPEN")
    ax.set_title(f"{MODEL}: earned and slashed OPEN per account")
    ax.legend(loc="lower right")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, out_png)
    return out_png
