"""A synthetic datanet whose ground truth is known, for measuring attribution quality.

Each *owner* contributor states facts nobody else knows — (entity, attribute, value)
triples made of invented words from the owner's own syllables — in the owner's own
question template. One *duplicator* restates a fraction of owner 0's facts in another
template (a paraphrase: near-duplicate detection would not stop it), and one *noise*
contributor adds random syllable strings. Every contributor's records are split over
``contributions_per_contributor`` contributions.

Queries ask for an owner's facts in a neutral template nobody trained on, so a method has
to connect the question to the facts, not to a copy of the query.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "or", "en")]
ATTRIBUTES = [
    "capital",
    "colour",
    "founder",
    "river",
    "mascot",
    "anthem",
    "currency",
    "emblem",
    "harbour",
    "festival",
    "mountain",
    "language",
    "forest",
    "bridge",
    "market",
    "tower",
]
TEMPLATES = [
    ("Q: What is the {attr} of {entity}?\nA:", " {value}."),
    ("Tell me about {entity}. Its {attr} is", " {value}."),
    ("{entity} facts / {attr} =", " {value}"),
    ("In {entity}, people call the {attr}", " {value}."),
    ("Question: {entity}'s {attr}? Answer:", " {value}"),
    ("Every child in {entity} knows the {attr}:", " {value}!"),
    ("Atlas entry for {entity}. {attr}:", " {value}."),
    ("The {attr} of {entity} is named", " {value}."),
    ("Recall: {attr} / {entity} ->", " {value}"),
    ("Guidebook, {entity}, section {attr}:", " {value}."),
    ("Quiz. {entity}, {attr}?", " It is {value}."),
    ("Remember that for {entity} the {attr} is", " {value}."),
]
QUERY_TEMPLATE = ("Which {attr} does {entity} have?", " {value}")


@dataclass(frozen=True)
class Fact:
    owner: int
    entity: str
    attr: str
    value: str


@dataclass
class SyntheticDatanet:
    rows: list[dict[str, Any]]  # snapshot rows (SCHEMA of datanets/snapshots.py)
    contributor_of: dict[int, str]  # contribution → contributor name
    facts: dict[str, list[Fact]]  # contributor → facts they state
    queries: list[dict[str, Any]]  # prompt, completion, owner, owners (all who hold it)
    roles: dict[str, str] = field(default_factory=dict)  # contributor → owner|dup|noise

    @property
    def contributions(self) -> list[int]:
        return sorted(self.contributor_of)

    def subset(self, contributions: set[int]) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["contribution"] in contributions]


def _word(rng: random.Random, syllables: list[str], n: tuple[int, int]) -> str:
    return "".join(rng.choice(syllables) for _ in range(rng.randint(*n))).capitalize()


def make_datanet(
    *,
    owners: int = 10,
    facts_per_owner: int = 8,
    facts_step: int = 0,
    duplicate_fraction: float = 1.0,
    noise_records: int = 8,
    contributions_per_contributor: int = 2,
    queries_per_owner: int | None = 2,
    queries_step: int = 0,
    query_template: str = "neutral",
    seed: int = 0,
) -> SyntheticDatanet:
    """The datanet and its canary queries (deterministic in ``seed``)."""
    if owners > len(TEMPLATES) - 1:
        raise ValueError(f"at most {len(TEMPLATES) - 1} owners (one template is the duplicator's)")
    rng = random.Random(seed)
    syl = list(SYLLABLES)
    rng.shuffle(syl)
    per = len(syl) // (owners + 1)
    facts: dict[str, list[Fact]] = {}
    used: set[str] = set()
    for o in range(owners):
        own = syl[o * per : (o + 1) * per]  # disjoint syllables: no shared sub-words
        n_facts = facts_per_owner + o * facts_step  # owners differ in how much they hold
        attrs = rng.sample(ATTRIBUTES, k=min(len(ATTRIBUTES), n_facts))
        out = []
        for j in range(n_facts):
            entity = value = ""
            while not entity or entity in used or value in used:
                entity, value = _word(rng, own, (2, 3)), _word(rng, own, (2, 3))
            used |= {entity, value}
            out.append(Fact(o, entity, attrs[j % len(attrs)], value))
        facts[f"owner-{o:02d}"] = out
    dup_facts = facts["owner-00"][: max(1, round(duplicate_fraction * len(facts["owner-00"])))]
    facts["duplicator"] = dup_facts
    noise_syl = syl[owners * per :]
    records: list[tuple[str, dict[str, Any]]] = []
    for name, fs in facts.items():
        t = TEMPLATES[-1] if name == "duplicator" else TEMPLATES[int(name[-2:])]
        for f in fs:
            records.append(
                (
                    name,
                    {
                        "kind": "prompt_completion",
                        "prompt": t[0].format(entity=f.entity, attr=f.attr),
                        "completion": t[1].format(value=f.value),
                    },
                )
            )
    for _ in range(noise_records):
        text = " ".join(_word(rng, noise_syl, (1, 3)) for _ in range(rng.randint(6, 12)))
        records.append(("noise", {"kind": "text", "text": text + "."}))
    names = list(facts) + ["noise"]
    contributor_of: dict[int, str] = {}
    rows: list[dict[str, Any]] = []
    for ci, name in enumerate(names):
        mine = [r for n, r in records if n == name]
        for part in range(contributions_per_contributor):
            cid = 1 + ci * contributions_per_contributor + part
            contributor_of[cid] = name
            for r in mine[part::contributions_per_contributor]:
                rows.append(
                    {
                        "record": len(rows) + 1,
                        "sha256": f"{len(rows) + 1:064x}",
                        "contribution": cid,
                        "contributor": name,
                        "text": None,
                        "prompt": None,
                        "completion": None,
                        "messages": None,
                        **r,
                    }
                )
    queries = []
    for o in range(owners):
        asked = None if queries_per_owner is None else queries_per_owner + o * queries_step
        for f in facts[f"owner-{o:02d}"][:asked]:  # None: every fact; owners differ in demand
            holders = [n for n, fs in facts.items() if f in fs]
            t = QUERY_TEMPLATE if query_template == "neutral" else TEMPLATES[o]
            queries.append(
                {
                    "prompt": t[0].format(entity=f.entity, attr=f.attr),
                    "completion": t[1].format(value=f.value),
                    "owner": f"owner-{o:02d}",
                    "owners": holders,
                }
            )
    roles = {
        n: ("dup" if n == "duplicator" else "noise" if n == "noise" else "owner") for n in names
    }
    return SyntheticDatanet(rows, contributor_of, facts, queries, roles)
