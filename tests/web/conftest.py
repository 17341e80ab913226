"""The browser tests' world: one node over the shared devnet (the market of tests/market.py
plus a served model whose answers trace to a contribution), a real uvicorn server, a job
worker, and one headless Chromium, all built once for the module.

Chromium is Debian's ``chromium`` (installed by ``make test``); without it the browser tests
skip, unless ``CI`` is set, where they fail: CI must run them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from openledger.home import init_home
from openledger.node import Node
from openledger.serving.sampling import SamplingParams
from openledger.store.factory_tables import JobRow, ModelRow
from openledger.units import OPEN
from tests.conftest import PASSWORD, World, free_port
from tests.market import Market, build_market
from tests.servers import serve_in_thread

CHROMIUM = os.environ.get("OPENLEDGER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MODEL = "facts-lora"
QUESTION = "Tell me a fact."
ANSWER_TOKENS = 24
# the README's pictures are rewritten only on request (make screenshots); otherwise the same
# checks run and the pictures go to a scratch folder, leaving the working tree as it was
SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("OPENLEDGER_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "openledger-screenshots"
)
WIDTHS = {"mobile": (375, 812), "desktop": (1440, 900)}


def chromium_or_skip() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(
            f"{CHROMIUM} is missing; CI must run the browser tests "
            "(`make test` installs Debian's chromium)."
        )
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium (`make test` does) to run "
        "the browser tests."
    )


@dataclass
class WebWorld:
    market: Market
    node: Node
    url: str
    answer: str  # the model's greedy answer to QUESTION
    heidi: int  # the contribution holding that answer (what attribution must link to)
    browser: Any

    def addr(self, name: str) -> str:
        return self.node.accounts.address(name)


def _world(devnet: Node, home: Path, files: Path) -> World:
    settings = replace(
        devnet.settings,
        home=home,
        db_url=f"sqlite:///{home / 'openledger.db'}",
        addresses_file=devnet.settings.addresses_path,
    )
    init_home(settings, PASSWORD)
    node = Node(settings, password_source=lambda: PASSWORD)
    acc = node.accounts
    node.datanets.create(
        "facts",
        description="short factual paragraphs",
        validators=[acc.address("bob"), acc.address("carol")],
        quorum=2,
        min_stake=10 * OPEN,
        signer=acc.signer("dave"),
    )
    files.mkdir()

    def write(name: str, text: str) -> Path:
        path = files / name
        path.write_text(text, encoding="utf-8")
        return path

    return World(node, "facts", write)


def _caps_lines(n: int = 40) -> str:
    import json
    import random

    rng = random.Random(3)

    def word() -> str:
        return "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))

    return (
        "\n".join(
            json.dumps(
                {
                    "prompt": f"What is the capital of {word().title()}?",
                    "completion": f"The capital is {word().title()} {word()}.",
                }
            )
            for _ in range(n)
        )
        + "\n"
    )


def _serve_traceable_model(w: World, market: Market, base: Path, adapter: Path) -> tuple[str, int]:
    """Serve ``adapter`` as facts-lora, trained (as far as the ledger and the span index know)
    on snapshot @2, which holds heidi's copy of the model's own answer to QUESTION: so the
    answer's spans trace to heidi's contribution. Returns (answer, heidi's contribution)."""
    from openledger.attribution.service import AttributionService
    from tests.tiny import register_models

    node, acc = w.node, w.node.accounts
    price_in, price_out = 3 * OPEN // 1000, 7 * OPEN // 1000
    # registered on chain too, so that agents can run it (AgentRegistry checks the model)
    mid, _ = node.contracts.models.register_model(
        acc.signer("dave"),
        str(base),
        "ab" * 32,
        market.model["snapshot_roots"],
        "00" * 32,
        price_in,
        price_out,
        "test",
    )
    register_models(
        node.db,
        str(base),
        {MODEL: adapter},
        owner=acc.address("dave"),
        price_in=price_in,
        price_out=price_out,
        first_id=mid,
        snapshot_roots=[],
    )
    ids = node.serving.encode_chat([{"role": "user", "content": QUESTION}])
    seeded = SamplingParams(max_tokens=ANSWER_TOKENS, temperature=0.7, seed=0)  # the page's
    answer = node.serving.submit(MODEL, ids, seeded).wait().text
    assert len(answer.strip()) > 20, answer
    heidi = node.contributions.contribute(
        "facts", [w.write("heidi.txt", answer.strip())], stake=10 * OPEN, signer=acc.signer("heidi")
    ).contribution_id
    caps = node.contributions.contribute(
        "facts",
        [w.write("capitals.jsonl", _caps_lines())],
        stake=10 * OPEN,
        signer=acc.signer("alice"),
    ).contribution_id
    for cid in (heidi, caps):
        for v in ("bob", "carol"):
            node.reviews.review(cid, signer=acc.signer(v), approve=True)
    snap = node.snapshots.snapshot("facts", signer=acc.signer("dave"))
    rows = node.snapshots.table("facts", snap["version"]).to_pylist()
    service: AttributionService = node.attribution
    label = f"facts@{snap['version']}"
    service._build_rows(
        "spans",
        rows,
        service.index_dir(MODEL, "spans"),
        label,
        snap["root"],
        str(base),
        merge=False,
        force=True,
    )
    with node.db.session() as s:
        row = s.scalar(select(ModelRow).where(ModelRow.name == MODEL))
        row.snapshot_roots = [snap["root"]]
        row.attribution_policy = {"spans": 1.0}
        job = s.get(JobRow, row.job_id)
        job.params = {
            "datanet": "facts",
            "version": snap["version"],
            "snapshot_root": snap["root"],
            "base": str(base),
        }
    return answer, heidi


class _Worker(threading.Thread):
    """The node's job worker, in process: runs queued training jobs one at a time."""

    def __init__(self, node: Node) -> None:
        super().__init__(name="web-test-worker", daemon=True)
        self.node = node
        self.stop = threading.Event()

    def run(self) -> None:
        from openledger.factory.runner import run_job

        while not self.stop.is_set():
            job = self.node.jobs.next_queued()
            if job is None:
                self.stop.wait(0.3)
                continue
            with contextlib.suppress(Exception):  # the job row records the failure
                run_job(self.node.jobs, self.node.snapshots, job, progress=False)


@pytest.fixture(scope="module")
def web(
    devnet_node: Node, tiny_base_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebWorld]:
    from playwright.sync_api import sync_playwright

    from openledger.app import create_app
    from tests import tiny

    executable = chromium_or_skip()
    snapshot = devnet_node.client.rpc("evm_snapshot")
    root = tmp_path_factory.mktemp("web")
    w = _world(devnet_node, root / "home", root / "files")
    node = w.node
    node.settings = replace(node.settings, serve_device="cpu", serve_max_batch=8, serve_max_ctx=160)
    try:
        market = build_market(w, devnet_node)
        adapter = tiny.make_adapter(
            tiny_base_dir, root / "adapter", rank=8, modules=("q_proj", "v_proj"), seed=103
        )
        answer, heidi = _serve_traceable_model(w, market, tiny_base_dir, adapter)
        market.model = node.models.get(MODEL)  # what the market's paid requests pay for
        port = free_port()
        node.settings = replace(node.settings, api_port=port)  # its origin: sign-ins, writes
        worker = _Worker(node)
        worker.start()
        with serve_in_thread(create_app(node), port=port) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                yield WebWorld(market, node, url, answer, heidi, browser)
            finally:
                browser.close()
        worker.stop.set()
        worker.join(30)
    finally:
        node.close()
        devnet_node.client.rpc("evm_revert", [snapshot])


UNLABELLED_JS = """
[...document.querySelectorAll("input, select, textarea, button")]
  .filter((el) => el.type !== "hidden")
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                  && !(el.tagName === "BUTTON" && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 80))
"""


def shoot(page: Any, name: str) -> None:
    """Screenshots of the page at 375 px and 1440 px wide (docs/screenshots/NAME-WIDTH.png),
    after checking that every form control has a label and nothing is wider than the
    viewport."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    unlabelled = page.evaluate(UNLABELLED_JS)
    assert not unlabelled, f"{name}: form controls without a label: {unlabelled}"
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(150)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width + 1, f"{name} is {overflow} px wide at {width} px"
        path = SHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        assert path.stat().st_size < 300_000 or _shrink(page, path), path
    page.set_viewport_size({"width": 1280, "height": 900})


def _shrink(page: Any, path: Path) -> bool:
    """A tall page: keep the first screenful instead (under 300 KB)."""
    page.screenshot(path=str(path), full_page=False, animations="disabled")
    return path.stat().st_size < 300_000
