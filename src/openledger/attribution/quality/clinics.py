"""A datanet of clinics whose ground truth is known, with the queries users actually send.

Each *clinic* knows a few invented diseases: for each, the sign patients show and the drug
it prescribes. It writes two contributions in its own voice: questions and answers (one
record per fact, in one of the clinic's own two question templates) and case notes (one
text record per disease, in the clinic's own note style). So every fact is stated twice, in
two contributions of its owner.

Besides them:

- **overlapping topics**: every clinic also writes a note about one disease of the next
  clinic, stating a fact only it knows (the region where the disease is found). A question
  about that disease's drug belongs to the owner; one about its region to the neighbour,
  although both contributions name the disease;
- a **paraphrasing sybil** restates two diseases of clinic 0 in its own words (they pass
  the near-duplicate check) and adds one disease of its own, in a later contribution;
- a **noise** contributor adds random syllable strings.

Queries, each tagged with its kind and the contributors who hold its facts:

- ``train``: a training record's prompt and completion exactly as written;
- ``unseen``: a prompt *and* a completion in wordings nobody trained on (one per disease),
  e.g. "A patient shows S. What is wrong and what helps?" → "The diagnosis is X; treat it
  with T.";
- ``negative``: facts nobody contributed (general knowledge, and invented diseases no clinic
  knows): an honest method attributes little of them.

Names are built from one shared pool of syllables, so sub-words recur across clinics as in
real text; every disease, sign, drug and region name is unique.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "or", "en")]

#: Each clinic answers in two of these (prompt, completion) templates.
QA_TEMPLATES = [
    ("What do you prescribe for {x}?", "For {x} we prescribe {t}."),
    ("Which sign points to {x}?", "{x} shows itself by {s}."),
    ("How is {x} treated here?", "We treat {x} with {t}."),
    ("What do patients with {x} notice first?", "Most of them notice {s}."),
    ("Question from a nurse: medicine for {x}?", "Give {t} for {x}."),
    ("Question from a nurse: how do I spot {x}?", "Look for {s}."),
    ("Our protocol for {x} is", "a course of {t}."),
    ("The telltale sign of {x} is", "{s}, in almost every case."),
    ("Dr. on call, {x}: drug of choice?", "{t}, twice a day."),
    ("Dr. on call, {x}: what do we look for?", "{s} on examination."),
    ("Patients with {x} should take", "{t} until the signs are gone."),
    ("When you suspect {x}, check for", "{s} first."),
]
#: One per clinic: how its case notes read.
NOTE_TEMPLATES = [
    "Case note. A patient came in with {s}. We diagnosed {x} and started {t}.",
    "Ward diary: {x} again this week. The usual {s}; {t} worked as always.",
    "Clinic log - {x}: presenting sign {s}; treatment {t}; follow-up in ten days.",
    "Today's round: one case of {x}. {s} was obvious, so {t} was given.",
    "Notes for residents: think of {x} when you see {s}, and reach for {t}.",
    "Morning report. {x} confirmed by {s}. Prescribed {t} and sent home.",
    "From the register: {x}, recognised by {s}, responds to {t}.",
    "Handover: bed four has {x}; {s} on admission; {t} since yesterday.",
    "Teaching case: {s} led us to {x}; the patient recovered on {t}.",
    "Field clinic entry: {x} seen today, {s} typical, {t} prescribed.",
]
#: The neighbour's note about a disease it does not treat: where it is found.
REGION_TEMPLATES = [
    "Travel advice: {x} is found mostly around {r}.",
    "Survey note: cases of {x} cluster near {r}.",
]
REGION_QA = ("Where is {x} found?", "{x} is found mostly around {r}.")
#: The sybil's own wording of a clinic's facts (a paraphrase, not a near-duplicate).
SYBIL_TEMPLATES = [
    ("For the illness called {x}, which medicine works?", "The medicine that works is {t}."),
    ("How would one recognise the illness {x}?", "One recognises it by {s}."),
]
SYBIL_NOTE = "Summary: the illness {x} gives {s} and is cured by {t}."
#: Wordings that no training record uses: queries only.
UNSEEN = [
    (
        "A patient shows {s}. What is wrong and what helps?",
        "The diagnosis is {x}; treat it with {t}.",
    ),
    (
        "My doctor mentioned {x}. What medicine is used for it?",
        "People with {x} are usually given {t}.",
    ),
    ("Someone has {s}. Which illness could that be?", "That sounds like {x}."),
]
#: Facts nobody contributed.
NEGATIVE = [
    ("Who wrote Hamlet?", "William Shakespeare wrote Hamlet."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What colour is the sky on a clear day?", "The sky is blue on a clear day."),
]


@dataclass(frozen=True)
class Disease:
    owner: str
    name: str
    sign: str
    drug: str
    region: str | None = None  # stated by the neighbour clinic, if any
    region_by: str | None = None


@dataclass
class ClinicDatanet:
    """Snapshot rows, who contributed what, and the queries with their ground truth."""

    rows: list[dict[str, Any]]  # snapshot rows (SCHEMA of datanets/snapshots.py)
    contributor_of: dict[int, str]  # contribution → contributor
    diseases: list[Disease]
    queries: list[dict[str, Any]]  # prompt, completion, kind, owner, owners
    roles: dict[str, str] = field(default_factory=dict)  # contributor → owner|sybil|noise
    copied_records: frozenset[int] = frozenset()  # the sybil's paraphrases of clinic 0

    @property
    def contributions(self) -> list[int]:
        return sorted(self.contributor_of)

    def subset(self, contributions: set[int]) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["contribution"] in contributions]

    def queries_of(self, kind: str) -> list[dict[str, Any]]:
        return [q for q in self.queries if q["kind"] == kind]


class _Names:
    """Unique invented words from the shared syllable pool."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def word(self, syllables: tuple[int, int] = (2, 3)) -> str:
        while True:
            w = "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(*syllables)))
            if w not in self.used:
                self.used.add(w)
                return w

    def disease(self) -> str:
        return self.word((2, 3)).capitalize() + self.rng.choice([" fever", " syndrome", " pox"])

    def sign(self) -> str:
        return self.rng.choice(["spots", "rash", "swelling", "cough", "itch"]).join(
            (self.word((2, 2)) + " ", "")
        )

    def drug(self) -> str:
        return self.word((2, 3)) + self.rng.choice(["ol", "ine", "ex"])

    def region(self) -> str:
        return (
            "the "
            + self.word((2, 3)).capitalize()
            + " "
            + self.rng.choice(["valley", "coast", "hills"])
        )


def make_clinics(
    *,
    clinics: int = 6,
    diseases_per_clinic: int = 4,
    train_queries: int = 24,
    noise_records: int = 8,
    seed: int = 0,
) -> ClinicDatanet:
    """The datanet and its queries (deterministic in ``seed``)."""
    if not 2 <= clinics <= len(QA_TEMPLATES) // 2:
        raise ValueError(f"between 2 and {len(QA_TEMPLATES) // 2} clinics")
    rng = random.Random(seed)
    names = _Names(rng)
    clinic_names = [f"clinic-{i:02d}" for i in range(clinics)]
    qa_pairs = [QA_TEMPLATES[i : i + 2] for i in range(0, len(QA_TEMPLATES), 2)]
    rng.shuffle(qa_pairs)
    notes = list(NOTE_TEMPLATES)
    rng.shuffle(notes)

    diseases: list[Disease] = []
    for c in clinic_names:
        for _ in range(diseases_per_clinic):
            diseases.append(Disease(c, names.disease(), names.sign(), names.drug()))
    # overlapping topics: each clinic states the region of one disease of the next clinic
    for i, c in enumerate(clinic_names):
        neighbour = clinic_names[(i + 1) % clinics]
        j = next(k for k, d in enumerate(diseases) if d.owner == neighbour and d.region is None)
        d = diseases[j]
        diseases[j] = Disease(d.owner, d.name, d.sign, d.drug, names.region(), c)
    sybil_own = Disease("sybil", names.disease(), names.sign(), names.drug())
    copied = [d for d in diseases if d.owner == clinic_names[0]][:2]

    # contributor → list of (contribution label, rows)
    files: list[tuple[str, list[dict[str, Any]]]] = []
    for i, c in enumerate(clinic_names):
        mine = [d for d in diseases if d.owner == c]
        qa = []
        for d in mine:
            for p, comp in qa_pairs[i % len(qa_pairs)]:
                qa.append(_pc(p, comp, d))
        note_rows = [_text(notes[i].format(x=d.name, s=d.sign, t=d.drug)) for d in mine]
        for d in diseases:
            if d.region_by == c:
                t = REGION_TEMPLATES[i % len(REGION_TEMPLATES)]
                note_rows.append(_text(t.format(x=d.name, r=d.region)))
        files.append((c, qa))
        files.append((c, note_rows))
    noise = [
        _text(" ".join(names.word((1, 3)) for _ in range(rng.randint(6, 12))) + ".")
        for _ in range(noise_records)
    ]
    files.append(("noise", noise))
    sybil = [
        (_pc(p, comp, d), d in copied) for d in [*copied, sybil_own] for p, comp in SYBIL_TEMPLATES
    ]
    sybil += [
        (_text(SYBIL_NOTE.format(x=d.name, s=d.sign, t=d.drug)), d in copied)
        for d in [*copied, sybil_own]
    ]
    files.append(("sybil", [r for r, _ in sybil]))  # last: it copies what was already there

    rows: list[dict[str, Any]] = []
    contributor_of: dict[int, str] = {}
    for cid, (name, records) in enumerate(files, start=1):
        contributor_of[cid] = name
        for r in records:
            n = len(rows) + 1
            rows.append(
                {
                    "record": n,
                    "sha256": f"{n:064x}",
                    "contribution": cid,
                    "contributor": name,
                    "text": None,
                    "prompt": None,
                    "completion": None,
                    "messages": None,
                    **r,
                }
            )

    first_sybil = len(rows) - len(sybil) + 1
    copied_records = frozenset(first_sybil + i for i, (_, c) in enumerate(sybil) if c)
    all_diseases = [*diseases, sybil_own]
    holders = {d.name: _holders(d, copied) for d in all_diseases}
    queries: list[dict[str, Any]] = []
    pcs = [r for r in rows if r["kind"] == "prompt_completion" and r["contributor"] != "sybil"]
    for r in rng.sample(pcs, min(train_queries, len(pcs))):
        d = next(d for d in all_diseases if d.name in r["prompt"])
        queries.append(_query("train", r["prompt"], r["completion"], holders[d.name]))
    for k, d in enumerate(all_diseases):
        p, comp = UNSEEN[k % len(UNSEEN)]
        queries.append(
            _query(
                "unseen",
                p.format(x=d.name, s=d.sign),
                comp.format(x=d.name, t=d.drug),
                holders[d.name],
            )
        )
        if d.region is not None:
            queries.append(
                _query(
                    "unseen",
                    f"In which part of the world does one meet {d.name}?",
                    f"Mostly in {d.region}.",
                    [d.region_by],
                )
            )
    for p, comp in NEGATIVE:
        queries.append(_query("negative", p, comp, []))
    for _ in range(4):
        x, t = names.disease(), names.drug()
        queries.append(
            _query("negative", f"What is the treatment for {x}?", f"{x} is treated with {t}.", [])
        )
    roles = {c: "owner" for c in clinic_names} | {"sybil": "sybil", "noise": "noise"}
    return ClinicDatanet(rows, contributor_of, all_diseases, queries, roles, copied_records)


def _holders(d: Disease, copied: list[Disease]) -> list[str]:
    """Who states the disease's sign and drug: its owner first, then any copier."""
    return [d.owner, "sybil"] if d in copied else [d.owner]


def _pc(prompt: str, completion: str, d: Disease) -> dict[str, Any]:
    return {
        "kind": "prompt_completion",
        "prompt": prompt.format(x=d.name, s=d.sign, t=d.drug),
        "completion": completion.format(x=d.name, s=d.sign, t=d.drug),
    }


def _text(text: str) -> dict[str, Any]:
    return {"kind": "text", "text": text}


def _query(kind: str, prompt: str, completion: str, owners: list[str]) -> dict[str, Any]:
    return {
        "kind": kind,
        "prompt": prompt,
        "completion": completion,
        "owner": owners[0] if owners else None,
        "owners": owners,
    }
