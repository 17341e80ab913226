"""Contributing: every check is a clear error that leaves nothing behind."""

from __future__ import annotations

import hashlib
import json

import pytest

from openledger.datanets.dedup import estimate, jaccard
from openledger.datanets.manifest import verify_manifest
from openledger.datanets.parsers import IngestError
from openledger.errors import InsufficientFundsError, ValidationError
from openledger.units import OPEN
from tests.conftest import World

pytestmark = pytest.mark.anvil

PARAS = [
    "The Amazon river carries more water than the next seven largest rivers combined, "
    "draining about forty percent of South America.",
    "Honey never spoils: archaeologists found edible honey in Egyptian tombs that is more "
    "than three thousand years old.",
    "Octopuses have three hearts; two pump blood through the gills and one through the rest "
    "of the body.",
]


def contribute(w: World, *paths, stake: int = 10 * OPEN, who: str = "alice", **kw):
    return w.node.contributions.contribute(
        w.datanet, list(paths), stake=stake, signer=w.node.accounts.signer(who), **kw
    )


def test_contribution_is_recorded_signed_and_staked(world: World) -> None:
    node = world.node
    alice = node.accounts.address("alice")
    before = node.contracts.token.balance_of(alice)
    f1 = world.write("a.txt", "\n\n".join(PARAS[:2]))
    f2 = world.write("b.jsonl", json.dumps({"prompt": "Why?", "completion": PARAS[2]}) + "\n")
    result = contribute(world, f1, f2, stake=12 * OPEN)
    assert result.record_count >= 2 and result.stake == 12 * OPEN
    assert node.contracts.token.balance_of(alice) == before - 12 * OPEN
    on_chain = node.contracts.datanets.contribution(result.contribution_id)
    assert on_chain.contributor == alice and "0x" + on_chain.root.hex() == result.root
    envelope = json.loads(node.blobs.get(result.manifest_sha))
    assert verify_manifest(envelope["manifest"], envelope["signature"])
    assert envelope["manifest"]["root"] == result.root
    forged = {**envelope["manifest"], "contributor": node.accounts.address("bob")}
    assert not verify_manifest(forged, envelope["signature"])
    for f in result.files:
        assert node.blobs.exists(f["sha256"])
    page = node.reviews.pending("facts")
    assert page["total"] == 1 and page["items"][0]["previews"]


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("bad.txt", None, "not_utf8"),
        ("bad.jsonl", '{"text": "ok line"}\n{"text": broken\n', "malformed_json"),
        ("bad2.jsonl", '{"title": "no text field"}\n', "missing_field"),
        ("empty.jsonl", '{"text": "   "}\n', "empty_record"),
        ("long.jsonl", json.dumps({"text": "x " * 15_000}) + "\n", "record_too_long"),
    ],
)
def test_file_checks_leave_nothing(world: World, name: str, content: str | None, rule: str) -> None:
    path = world.write(name, "")
    if content is None:
        path.write_bytes(b"fine line\n\xff\xfe broken bytes\n")
    else:
        path.write_text(content, encoding="utf-8")
    before = world.footprint()
    with pytest.raises(IngestError) as err:
        contribute(world, world.write("good.txt", PARAS[0]), path)
    assert err.value.rule == rule and name in str(err.value)
    assert world.footprint() == before


def test_file_over_the_cap(world: World) -> None:
    big = world.write("big.txt", "")
    with big.open("w") as fh:
        for i in range(260_000):
            fh.write(f"paragraph {i} with some words to fill the file up\n\n")
    assert big.stat().st_size > 10_000_000
    before = world.footprint()
    with pytest.raises(IngestError) as err:
        contribute(world, big)
    assert err.value.rule == "file_too_large" and "big.txt" in str(err.value)
    assert world.footprint() == before


def test_daily_cap(world: World) -> None:
    assert world.node.contracts.params.get("max_files_per_day") == 20
    # distinct facts: near-copies of each other would be refused as padding
    fact = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(21)]
    contribute(world, *[world.write(f"d{i}.txt", f"day one fact {fact[i]}.") for i in range(15)])
    files = [world.write(f"f{i}.txt", f"another fact {fact[15 + i]}.") for i in range(6)]
    before = world.footprint()
    with pytest.raises(ValidationError) as err:
        contribute(world, *files)
    assert "15 file(s) today" in err.value.message and "daily cap of 20" in err.value.message
    assert world.footprint() == before


def test_exact_duplicate_names_the_contribution(world: World) -> None:
    first = contribute(world, world.write("a.txt", PARAS[0]))
    before = world.footprint()
    with pytest.raises(IngestError) as err:
        contribute(
            world, world.write("new.txt", PARAS[1]), world.write("again.txt", PARAS[0]), who="erin"
        )
    assert err.value.rule == "exact_duplicate"
    assert f"contribution #{first.contribution_id}" in str(err.value)
    assert world.footprint()[:2] == before[:2] and world.footprint()[3] == before[3]


def test_near_duplicate_names_the_contribution(world: World) -> None:
    first = contribute(world, world.write("a.txt", PARAS[0]))
    edited = PARAS[0].replace("forty percent", "forty per cent")
    before = world.footprint()
    with pytest.raises(IngestError) as err:
        contribute(world, world.write("edit.txt", edited))
    assert err.value.rule == "near_duplicate"
    assert f"contribution #{first.contribution_id}" in str(err.value) and "a.txt" in str(err.value)
    assert world.footprint() == before


def test_near_copies_inside_one_contribution_are_refused(world: World) -> None:
    """Padding a file with near-copies of its own records would raise its pro-rata share of
    the unattributed fees: the records of one contribution are compared with each other too,
    so the padded file is refused whole and the honest one earns the same share as before."""
    padded = "\n\n".join(
        [
            PARAS[0],
            PARAS[0].replace("forty percent", "forty per cent"),
            PARAS[0].replace("forty percent", "forty-one percent"),
            PARAS[1],
        ]
    )
    before = world.footprint()
    with pytest.raises(IngestError) as err:
        contribute(world, world.write("padded.md", padded))
    assert err.value.rule == "near_duplicate" and "same contribution" in str(err.value)
    assert "padded.md" in str(err.value)
    assert world.footprint() == before
    honest = contribute(world, world.write("honest.md", "\n\n".join([PARAS[0], PARAS[1]])))
    assert honest.record_count == 2  # its records, and so its share, are what they were


NOTE = (
    "Honeybees communicate the location of flowers through a waggle dance performed inside "
    "the hive, whose angle gives the direction."
)
#: two words changed: Jaccard 0.767 of character 5-grams (MinHash estimate 0.70), under the
#: near-duplicate threshold
COPY = NOTE.replace("location", "position").replace("direction", "heading")
TRENCH = (
    "The Mariana Trench is the deepest known point of the ocean floor, nearly eleven "
    "kilometres below the surface of the Pacific."
)
TRENCH_REWORDED = TRENCH.replace("point", "spot").replace("below", "beneath")


def test_a_reworded_copy_of_another_contributors_note_is_refused(world: World) -> None:
    """A copy of alice's note with two words changed (Jaccard 0.77, which the near-duplicate
    check at 0.8 lets by) would take a share of the fees her note earns: it is refused,
    naming her contribution, and nothing is written."""
    assert 0.76 <= jaccard(NOTE, COPY) < 0.77
    sigs = world.node.neardup.hasher.signatures([NOTE, COPY])
    assert estimate(sigs[0], sigs[1]) < 0.8  # not a near duplicate
    first = contribute(world, world.write("bees.txt", NOTE))
    before = world.footprint()
    with pytest.raises(IngestError) as err:
        contribute(world, world.write("mine.txt", COPY), who="frank")
    e = err.value
    assert e.rule == "reworded_copy" and e.file == "mine.txt"
    assert "reworded copy (Jaccard 0.77 of character 5-grams ≥ 0.7)" in str(e)
    assert (
        f"of another contributor's record, bees.txt paragraph 1 (line 1) in contribution "
        f"#{first.contribution_id}"
    ) in str(e)
    assert "own words" in e.fix
    assert world.footprint() == before
    # one's own records are held to the near-duplicate rule only: rows of one template
    # differ by a word or two and are different facts
    mine = contribute(world, world.write("trench.txt", TRENCH), who="frank")
    again = contribute(world, world.write("again.txt", TRENCH_REWORDED), who="frank")
    assert (mine.record_count, again.record_count) == (1, 1)
    # ... while anyone else's copy of it is refused
    before = world.footprint()
    with pytest.raises(IngestError) as err:
        contribute(
            world,
            world.write("theirs.txt", TRENCH.replace("nearly", "almost").replace("floor", "bed")),
        )
    assert err.value.rule == "reworded_copy" and "another contributor's record" in str(err.value)
    assert world.footprint() == before


def test_different_facts_in_one_template_are_accepted(world: World) -> None:
    """Honest records that share a template (Jaccard 0.61-0.66) are not copies."""
    mine = [
        "Q: What is the boiling point of water at sea level? A: 100 degrees Celsius.",
        "Mercury is the closest planet to the Sun and has no moons.",
    ]
    theirs = [
        "Q: What is the boiling point of ethanol at sea level? A: 78 degrees Celsius.",
        "Venus is the second closest planet to the Sun and has no moons.",
    ]
    for a, b in zip(mine, theirs, strict=True):
        assert 0.6 <= jaccard(a, b) < 0.7

    def jsonl(texts: list[str]) -> str:
        return "".join(json.dumps({"text": t}) + "\n" for t in texts)

    assert contribute(world, world.write("a.jsonl", jsonl(mine))).record_count == 2
    their = contribute(world, world.write("b.jsonl", jsonl(theirs)), who="frank")
    assert their.record_count == 2


def test_stake_under_minimum(world: World) -> None:
    before = world.footprint()
    with pytest.raises(ValidationError) as err:
        contribute(world, world.write("a.txt", PARAS[0]), stake=9 * OPEN)
    assert err.value.field == "stake" and "minimum" in err.value.message
    assert world.footprint() == before


def test_allowance_too_small(world: World) -> None:
    before = world.footprint()
    with pytest.raises(InsufficientFundsError) as err:
        contribute(world, world.write("a.txt", PARAS[0]), approve=False)
    assert err.value.field == "allowance"
    assert world.footprint() == before


def test_balance_too_small(world: World) -> None:
    before = world.footprint()
    with pytest.raises(InsufficientFundsError):
        contribute(world, world.write("a.txt", PARAS[0]), stake=10**7 * OPEN)
    assert world.footprint() == before


def test_failure_after_blobs_before_commit_leaves_nothing(world: World) -> None:
    before = world.footprint()

    def crash() -> None:
        raise RuntimeError("power cut")

    world.node.contributions.before_chain = crash
    with pytest.raises(RuntimeError):
        contribute(world, world.write("a.txt", PARAS[0]), world.write("b.txt", PARAS[1]))
    assert world.footprint() == before
    world.node.contributions.before_chain = None
    # and the same files are accepted afterwards: nothing half-written blocks them
    assert contribute(world, world.write("a.txt", PARAS[0])).record_count == 1
