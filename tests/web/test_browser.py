"""The web app in a real headless Chromium against a real node (uvicorn, the devnet): sign
in with a dev account; contribute (a bad file's error next to it, with the line); approve
as a validator; train a tiny model to completion and watch its loss curve, then publish it;
chat and follow the highlighted attribution to the contribution it came from; claim rewards
and see the balance change on chain. Each page is photographed at 375 and 1440 px.

One server, one browser and one market for the module (tests/web/conftest.py); each test
signs in as the account it needs, in a fresh browser context.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select
from web3 import Web3

from openledger.errors import AuthError
from openledger.store.datanet_tables import ContributionRow
from openledger.units import OPEN, fmt_open
from tests.ledger.settlement.test_epochs import fast_forward, paid
from tests.servers import wait_until
from tests.web.conftest import QUESTION, WebWorld, shoot
from tests.web.injected import TestWallet

pytestmark = pytest.mark.anvil


@pytest.fixture
def page(web: WebWorld) -> Iterator[Any]:
    context = web.browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "requestfailed",
        lambda r: (
            None
            if "ERR_ABORTED" in (r.failure or "")
            else errors.append(f"request failed: {r.url} {r.failure}")
        ),
    )
    pg.on(
        "request",
        lambda r: None if r.url.startswith(web.url) else errors.append(f"left the node: {r.url}"),
    )
    yield pg
    if errors or getattr(pg, "_failed", False):
        pg.screenshot(path="/tmp/web-fail.png")
    context.close()
    assert not errors, errors


def go(page: Any, web: WebWorld, route: str) -> None:
    url = f"{web.url}/#/{route}"
    if page.url == url:  # the same hash is no navigation: load it afresh
        page.evaluate("document.getElementById('view').removeAttribute('data-rendered')")
        page.reload()
    else:
        page.goto(url)
    page.wait_for_selector(f'main[data-rendered="#/{route}"]')


def sign_in(page: Any, web: WebWorld, name: str) -> None:
    go(page, web, "signin")
    page.click(f'button[data-dev="{name}"]')
    page.wait_for_selector("#whoami")
    assert page.inner_text("#whoami") == name
    page.wait_for_selector('main[data-rendered="#/"]')


def test_sign_in_with_a_dev_account(web: WebWorld, page: Any) -> None:
    go(page, web, "")
    assert page.inner_text("#signin-link") == "Sign in"
    shoot(page, "home")
    go(page, web, "signin")
    assert "dev account" in page.inner_text("main")
    assert "No browser wallet found" in page.inner_text("main")  # headless: no window.ethereum
    shoot(page, "signin")
    sign_in(page, web, "alice")
    assert page.inner_text(".account .badge.dev") == "dev account"
    cookie = next(c for c in page.context.cookies() if c["name"] == "ol_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # the session is the node's view too
    me = page.evaluate("fetch('/web/api/me').then(r => r.json())")
    assert me["address"] == web.addr("alice") and me["dev"] == "alice"
    assert int(me["balance"]) > 0
    page.click("#signout")
    page.wait_for_selector("#signin-link")


WALLET_JS = """
window.__chain = "0x1";
window.ethereum = { request: async ({ method, params }) => {
  if (method === "eth_chainId") return window.__chain;
  return await window.walletRequest(method, params || []);
} };
"""

# Every step a busy button's progress line (ui.busy) shows, as it is set, and where the line is.
STEPS_JS = """
window.__steps = [];
new MutationObserver((records) => {
  for (const r of records) {
    if (!(r.target.classList && r.target.classList.contains("busy-step"))) continue;
    for (const n of r.addedNodes) {
      window.__steps.push({ text: n.textContent, after: r.target.previousElementSibling?.id,
                            live: r.target.getAttribute("aria-live") });
    }
  }
}).observe(document, { subtree: true, childList: true });
"""


def test_a_browser_wallet_signs_in_contributes_delegates_and_deposits(
    web: WebWorld, page: Any, tmp_path: Any, devnet_node: Any
) -> None:
    """An injected EIP-1193 wallet with a key of its own (not a dev account), funded with
    OPEN and ETH by the operator: the wrong chain is said, the SIWE message signed; then the
    node prepares each write and the wallet signs and sends it itself: a contribution (its
    manifest signed, approve + contribute), a delegation and a deposit of credit, each
    recorded by the node only once mined."""
    wallet = TestWallet(web.node, "0x" + "42" * 32)
    wallet.fund(devnet_node)
    seen: list[tuple[str, Any]] = []
    sent: list[str] = []

    def request(method: str, params: list[Any]) -> Any:
        seen.append((method, params))
        out = wallet.request(method, params)
        if method == "eth_sendTransaction":
            sent.append(out)
        return json.loads(Web3.to_json(out)) if out is not None else None

    page.expose_function("walletRequest", request)
    page.add_init_script(WALLET_JS)
    page.add_init_script(STEPS_JS)
    go(page, web, "signin")
    page.click("#wallet-signin")
    error = page.locator("#signin-error .error")
    assert "Your wallet is on chain id 1; this node runs on chain id 31337" in error.inner_text()
    page.evaluate("window.__chain = '0x7a69'")
    page.click("#wallet-signin")
    page.wait_for_selector("#whoami")
    assert page.get_attribute("#whoami", "title") == wallet.address
    assert page.locator(".account .badge.dev").count() == 0
    signed = [p[0] for m, p in seen if m == "personal_sign"]
    assert (
        len(signed) == 1
        and f"{web.url.removeprefix('http://')} wants you to sign in" in (signed[0])
    )
    assert "Chain ID: 31337" in signed[0]

    # contribute: the wallet signs the manifest and sends approve + contribute
    node, nonce = web.node, node_nonce(web, wallet.address)
    go(page, web, "datanets/facts")
    path = tmp_path / "wasps.txt"
    path.write_text("Wasps can recognise the faces of other wasps.")
    page.set_input_files("#f-files", str(path))
    page.fill("#f-stake", "12")
    seen.clear()
    page.evaluate("window.__steps = []")
    page.click("#contribute-submit")
    page.wait_for_selector("#contribute-status .ok")
    cid = int(re.search(r"Contribution #(\d+)", page.inner_text("#contribute-status")).group(1))
    assert [m for m, _ in seen if m in ("personal_sign", "eth_sendTransaction")] == [
        "personal_sign",
        "eth_sendTransaction",
        "eth_sendTransaction",
    ]
    # each step was said next to the button, in a polite live region, then the line went
    steps = page.evaluate("window.__steps")
    assert [s["text"] for s in steps] == [
        "Sign the message in your wallet…",
        "Confirm 1 of 2 transactions in your wallet (approve)…",
        f"Waiting for {sent[0][:10]}… to be mined…",
        "Confirm 2 of 2 transactions in your wallet (contribute)…",
        f"Waiting for {sent[1][:10]}… to be mined…",
        "Recording…",
    ]
    assert {(s["after"], s["live"]) for s in steps} == {("contribute-submit", "polite")}
    assert page.locator("#contribute-form .busy-step").count() == 0
    assert node_nonce(web, wallet.address) == nonce + 2  # sent by the wallet, not the node
    on_chain = node.contracts.datanets.contribution(cid)
    assert (on_chain.contributor, on_chain.stake) == (wallet.address, 12 * OPEN)
    with node.db.session() as s:
        row = s.scalar(select(ContributionRow).where(ContributionRow.chain_id == cid))
        assert (row.contributor, row.stake, row.record_count) == (wallet.address, 12 * OPEN, 1)

    # delegate to herself from the governance page
    go(page, web, "governance")
    page.click("#delegate-submit")
    page.wait_for_selector("#delegate-status .ok")
    token = node.contracts.token
    assert token.get_votes(wallet.address) == token.balance_of(wallet.address) > 0

    # deposit inference credit from the account page
    before = int(node.ledger.credit(wallet.address)["available"])
    page.click("#whoami")
    page.wait_for_selector('main[data-rendered="#/account"]')
    page.fill("#f-deposit-amount", "5")
    page.click("#deposit-submit")
    page.wait_for_selector("#deposit-status .ok")
    assert int(node.ledger.credit(wallet.address)["available"]) - before == 5 * OPEN
    assert node.contracts.escrow.balance_of(wallet.address) == 5 * OPEN
    # a refusal of the service's own checks is shown in place, nothing sent
    seen.clear()
    page.fill("#f-deposit-amount", "100000")
    page.click("#deposit-submit")
    assert "less than the" in page.inner_text("#deposit-status .error")
    assert not [m for m, _ in seen if m == "eth_sendTransaction"]

    # an API key of the wallet's own, with the scopes chosen: a script may write for it
    assert page.is_checked("#f-key-scope-inference") and page.is_checked("#f-key-scope-read")
    assert not page.is_checked("#f-key-scope-write")
    page.fill("#f-key-label", "my-script")
    page.uncheck("#f-key-scope-inference")
    page.check("#f-key-scope-write")
    page.click("#key-create")
    secret = page.inner_text("#new-key")
    principal = node.api_keys.verify(secret)
    assert principal.address == wallet.address and principal.account is None
    assert principal.scopes == {"read", "write"}
    row = page.locator(f'#key-list tr[data-key="{secret[:12]}"]')
    assert row.locator(".key-scopes").inner_text() == "read, write"


def node_nonce(web: WebWorld, address: str) -> int:
    return web.node.client.w3.eth.get_transaction_count(address)


def test_contribute_shows_a_bad_files_error_by_the_file_then_accepts_a_good_one(
    web: WebWorld, page: Any, tmp_path: Any
) -> None:
    sign_in(page, web, "erin")
    go(page, web, "datanets")
    page.fill("#f-q", "factual")
    assert page.locator(".datanet-card").count() == 1
    shoot(page, "datanets")
    go(page, web, "datanets/facts")
    assert page.locator("#contributions tbody tr").count() >= 5
    bad = tmp_path / "notes.jsonl"
    bad.write_text('{"text": "Bees can recognise human faces."}\n{"text": "oops"\n')
    page.set_input_files("#f-files", str(bad))
    page.fill("#f-stake", "12")
    before = _count(web)
    page.click("#contribute-submit")
    error = page.locator('#file-list li[data-file="notes.jsonl"] .error')
    error.wait_for()
    text = error.inner_text()
    assert text.startswith("notes.jsonl, line 2:") and "malformed JSON" in text and "Fix:" in text
    assert _count(web) == before  # nothing written
    shoot(page, "datanet")
    good = tmp_path / "notes.jsonl"  # the same file, fixed
    good.write_text(
        '{"text": "Bees can recognise human faces."}\n'
        '{"text": "A honey bee visits about fifty flowers on one trip."}\n'
    )
    page.set_input_files("#f-files", str(good))
    page.click("#contribute-submit")
    page.wait_for_selector("#contribute-status .ok")
    cid = int(re.search(r"Contribution #(\d+)", page.inner_text("#contribute-status")).group(1))
    with web.node.db.session() as s:
        row = s.scalar(select(ContributionRow).where(ContributionRow.chain_id == cid))
        assert (row.contributor, row.stake, row.record_count, row.status) == (
            web.addr("erin"),
            12 * OPEN,
            2,
            "pending",
        )
    page.click("#contribute-status a")
    page.wait_for_selector(f'#contribution-title[data-id="{cid}"]')
    assert "A honey bee visits" in page.inner_text("#records")
    shoot(page, "contribution")


def node_operator(web: WebWorld) -> str:
    return web.node.accounts.operator_address()


def _count(web: WebWorld) -> int:
    with web.node.db.session() as s:
        return len(s.scalars(select(ContributionRow.id)).all())


def test_create_a_datanet_and_take_back_a_rejected_stake(web: WebWorld, page: Any) -> None:
    node = web.node
    sign_in(page, web, "frank")
    go(page, web, "datanets")
    page.click("#create summary")
    page.fill("#f-name", "Bad Name")
    page.fill("#f-validators", "bob, carol")
    page.click("#create-submit")
    assert "'Bad Name' is not allowed" in page.inner_text("#create-status .error")
    page.fill("#f-name", "insects")
    page.fill("#f-quorum", "2")
    page.click("#create-submit")
    page.wait_for_selector("#create-status .ok")
    dn = node.datanets.show("insects")
    assert dn["owner"] == web.addr("frank") and dn["quorum"] == 2
    assert dn["validators"] == [web.addr("bob"), web.addr("carol")]
    # frank's spam was rejected and half its 10 OPEN stake slashed: the rest comes back
    before = node.contracts.token.balance_of(web.addr("frank"))
    go(page, web, f"contributions/{web.market.rejected}")
    page.click("#withdraw-stake")
    page.wait_for_selector("#withdraw-status .ok")
    assert "Withdrew 5 OPEN" in page.inner_text("#withdraw-status")
    assert node.contracts.token.balance_of(web.addr("frank")) - before == 5 * OPEN


def test_a_validator_approves_from_the_review_queue(
    web: WebWorld, page: Any, tmp_path: Any
) -> None:
    acc = web.node.accounts
    path = tmp_path / "moon.txt"
    path.write_text("The Moon moves about four centimetres away from the Earth every year.")
    cid = web.node.contributions.contribute(
        "facts", [path], stake=20 * OPEN, signer=acc.signer("frank")
    ).contribution_id
    sign_in(page, web, "bob")
    go(page, web, "review")
    item = page.locator(f'.review-item[data-id="{cid}"]')
    assert "four centimetres" in item.inner_text()
    assert "at risk: 10 OPEN" in item.inner_text()  # half of the 20 OPEN stake (slash 50 %)
    shoot(page, "review")
    item.locator('button[data-action="reject"]').click()  # a rejection needs a reason
    assert "A rejection needs a reason." in item.locator(".error").inner_text()
    item.locator('button[data-action="approve"]').click()
    item.locator(".ok").wait_for()
    assert "1 approvals" in item.inner_text()
    detail = web.node.reviews.detail(cid)
    assert [r["validator"] for r in detail["reviews"]] == [web.addr("bob")]
    assert detail["approvals"] == 1 and detail["status"] == "pending"  # quorum is 2


def test_train_a_tiny_model_watch_the_loss_curve_and_publish(web: WebWorld, page: Any) -> None:
    sign_in(page, web, "dave")
    go(page, web, "factory")
    assert page.input_value("#f-datanet") == "facts@2"
    assert page.input_value("#f-rank") == "8" and page.input_value("#f-method") == "lora"
    shoot(page, "factory")
    page.fill("#f-alpha", "0")  # the browser allows it; the node's check does not
    page.click("#train-submit")
    assert "alpha" in page.inner_text("#train-status .error")
    assert page.get_attribute("#f-alpha", "aria-invalid") == "true"
    for field, value in {
        "rank": "2",
        "alpha": "4",
        "lr": "5e-3",
        "epochs": "1",
        "batch_size": "8",
        "max_seq_len": "32",
        "eval_split": "0.2",
        "eval_every": "1",
    }.items():
        page.fill(f"#f-{field}", value)
    page.click("#train-submit")
    page.wait_for_url(re.compile(r".*#/factory/jobs/\d+$"))
    job = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector('#job-title[data-status="succeeded"]', timeout=120_000)
    page.wait_for_selector("#evaluation")
    chart = page.locator("#loss-chart")
    metrics = web.node.jobs.metrics(job)
    assert (
        int(chart.get_attribute("data-points"))
        == sum(1 for r in metrics if r["train_loss"] is not None)
        == 5
    )  # 35 examples, batches of 8
    assert (
        int(chart.get_attribute("data-eval-points"))
        == sum(1 for r in metrics if r["eval_loss"] is not None)
        >= 2
    )
    assert chart.locator('path[data-series="train loss"]').count() == 1
    assert chart.locator('path[data-series="eval loss"]').count() == 1
    result = web.node.jobs.get(job)["result"]
    assert page.inner_text("#base-ppl") == f"{result['base_eval_ppl']:.2f}"
    assert page.inner_text("#adapter-ppl") == f"{result['adapter_eval_ppl']:.2f}"
    shoot(page, "job")
    page.fill("#f-name", "bees-tiny")
    page.fill("#f-price_in", "0.004")
    page.click("#publish-submit")
    page.wait_for_selector("#publish-status .ok")
    model = web.node.models.get("bees-tiny")
    assert model["owner"] == web.addr("dave") and model["job"] == job
    assert int(model["price_in"]) == 4 * OPEN // 1000


def test_a_failed_job_shows_its_error_and_resumes(web: WebWorld, page: Any) -> None:
    sign_in(page, web, "dave")
    go(page, web, "factory")
    page.fill("#f-target_modules", "qkv_proj")  # checked against the model when the job starts
    page.fill("#f-max_seq_len", "32")
    page.click("#train-submit")
    page.wait_for_url(re.compile(r".*#/factory/jobs/\d+$"))
    job = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector('#job-title[data-status="failed"]', timeout=60_000)
    assert "qkv_proj" in page.inner_text("#job-info .error")
    log = Path(web.node.jobs.get(job)["work_dir"]) / "job.log"
    assert log.read_text().count(f"job {job} started") == 1
    page.click("#job-resume")
    page.wait_for_selector("#job-status .ok")
    assert "Queued again" in page.inner_text("#job-status")
    wait_until(lambda: log.read_text().count(f"job {job} started") >= 2, timeout=60)  # runs again
    page.wait_for_selector('#job-title[data-status="failed"]', timeout=60_000)
    assert "qkv_proj" in page.inner_text("#job-info .error")


def test_an_owner_prices_a_datanet_and_another_account_pays_to_export_and_train(
    web: WebWorld, page: Any
) -> None:
    """Data access fees in the web app: the owner sets the prices from the datanet page (a
    price above max_access_price is refused there), another account sees them, pays to
    export, and the Model Factory form shows the training price before the job is queued; a
    job the node refuses costs nothing."""
    node, m = web.node, web.market
    sign_in(page, web, "dave")
    go(page, web, "datanets/facts")
    assert page.inner_text("#access-prices") == "Free to export and to train on."
    try:
        page.fill("#f-export", "1000.5")
        page.click("#price-submit")
        assert "max_access_price" in page.inner_text("#price-status .error")
        assert node.contracts.datanets.access_prices(1) == (0, 0)
        page.fill("#f-export", "2")
        page.fill("#f-train", "3")
        page.click("#price-submit")
        page.wait_for_selector("#price-status .ok")
        assert node.contracts.datanets.access_prices(1) == (2 * OPEN, 3 * OPEN)
        assert "2 OPEN per snapshot export" in page.inner_text("#access-prices")

        grace, token = web.addr("grace"), node.contracts.token
        before = token.balance_of(grace)
        context = web.browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        page = context.new_page()  # grace in a browser of her own
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, web, "grace")
        erin = f"contributions/{m.contributions['erin']}"
        go(page, web, erin)  # the records are not a way around the price
        assert "2 OPEN per export" in page.inner_text("#records-withheld")
        assert page.locator("#records .record").count() == 0
        go(page, web, "datanets/facts")
        assert page.locator("#price-form").count() == 0  # only the owner sets them
        row = page.locator('#snapshots tr[data-version="2"]')
        row.locator("button.pay-export").click()
        row.locator('a:has-text("jsonl")').wait_for()
        assert token.balance_of(grace) == before - 2 * OPEN
        href = row.locator('a:has-text("jsonl")').get_attribute("href")
        got = page.request.get(web.url + href)
        assert got.status == 200 and len(got.text().splitlines()) >= 3
        go(page, web, erin)  # paid: she reads them
        assert page.locator("#records-withheld").count() == 0
        assert page.locator("#records .record").count() >= 1

        go(page, web, "factory")
        page.wait_for_selector("#train-price:has-text('OPEN')")
        assert "3 OPEN per training job" in page.inner_text("#train-price")
        assert page.inner_text("#train-submit") == "Pay 3 OPEN and start training"
        page.fill("#f-alpha", "0")  # refused by the node's check before anything is paid
        page.click("#train-submit")
        assert "alpha" in page.inner_text("#train-status .error")
        assert token.balance_of(grace) == before - 2 * OPEN
        page.fill("#f-alpha", "16")
        page.fill("#f-target_modules", "qkv_proj")  # the job fails at once: no training here
        page.click("#train-submit")
        page.wait_for_url(re.compile(r".*#/factory/jobs/\d+$"))
        job = web.node.jobs.get(int(page.url.rsplit("/", 1)[1]))
        assert job["owner"] == grace and job["params"]["access"]["reason"] == "paid"
        assert token.balance_of(grace) == before - 5 * OPEN
        paid = node.access.list(payer=grace)["items"]
        assert [(a["kind"], a["used_by"]) for a in paid] == [
            ("train", f"job:{job['id']}"),
            ("export", None),
        ]
        context.close()
        assert not errors, errors
    finally:  # the module's other tests read facts free
        node.access.plan_set_prices("facts", export=0, train=0, owner=m.addr("dave")).run(
            node.accounts.signer("dave")
        )


def test_chat_highlights_the_spans_and_links_them_to_their_contribution(
    web: WebWorld, page: Any
) -> None:
    sign_in(page, web, "grace")
    go(page, web, "playground")
    page.select_option("#f-model", "facts-lora")
    page.fill("#f-max_tokens", "24")
    credit_before = web.node.ledger.credit(web.addr("grace"))["available"]
    page.fill("#f-message", QUESTION)
    page.press("#f-message", "Enter")
    page.wait_for_selector(".msg.assistant .answer", timeout=60_000)
    answer = page.locator(".msg.assistant .answer")
    assert answer.inner_text().strip() == web.answer.strip()
    marks = answer.locator("mark.span")
    assert marks.count() >= 1
    for i in range(marks.count()):
        mark = marks.nth(i)
        assert mark.get_attribute("data-contributions").split(",")[0] == str(web.heidi)
        assert mark.inner_text() in web.answer
        href = mark.locator("a").get_attribute("href")
        assert href.startswith(f"#/contributions/{web.heidi}?")
    # shares per contributor, fee split and the signed receipt
    receipt_id = answer.get_attribute("data-receipt")  # the public id (rc_…)
    receipt = web.node.ledger.receipt(receipt_id)
    assert receipt["receipt"]["payer"] == web.addr("grace")
    assert f"{fmt_open(int(receipt['receipt']['fee']))}" in page.inner_text("#fee").replace(",", "")
    assert page.get_attribute("#receipt-link", "href") == f"#/receipts/{receipt_id}"
    rows = page.locator("#fee tr[data-role]")
    shown = {
        rows.nth(i).get_attribute("data-role"): int(rows.nth(i).get_attribute("data-wei"))
        for i in range(rows.count())
    }
    assert sum(shown.values()) == int(receipt["receipt"]["fee"])  # the whole fee, split
    assert {"platform", "owner"} <= set(shown)
    assert "#" + str(web.heidi) in page.inner_text("#shares")
    spent = int(credit_before) - int(web.node.ledger.credit(web.addr("grace"))["available"])
    assert spent == int(receipt["receipt"]["fee"])
    shoot(page, "playground")
    # follow the first highlighted span to the record it came from
    first = marks.first
    span_text = first.inner_text()
    href = first.locator("a").get_attribute("href")
    assert parse_qs(href.split("?", 1)[1])["hl"][0] == span_text
    first.locator("a").click()
    page.wait_for_selector(f'#contribution-title[data-id="{web.heidi}"]')
    assert page.inner_text("#records .record.hl mark.span") == span_text
    go(page, web, f"receipts/{receipt_id}")  # the receipt checks itself as anyone could
    assert page.inner_text("h1").startswith("Receipt") and "rc_" not in page.inner_text("h1")
    assert page.inner_text("#receipt-id") == receipt_id  # the public id, in its own line
    assert f"number {receipt['seq']} " in page.inner_text("#receipt-ids")
    check = page.inner_text("#receipt-check")
    assert check.startswith("Verified") and node_operator(web) in check
    assert page.locator("#payouts tbody tr").count() >= 3
    shoot(page, "receipt")


def test_claim_rewards_and_the_balance_changes_on_chain(web: WebWorld, page: Any) -> None:
    node = web.node
    paid(web.market, 3)  # erin's contribution earns 60 % of the contributors' part
    node.epochs.close()
    fast_forward(node)
    erin = web.addr("erin")
    claimable = int(node.rewards.claimable(erin)["claimable"])
    assert claimable > 0
    before = node.contracts.token.balance_of(erin)
    sign_in(page, web, "erin")
    go(page, web, "rewards")
    assert page.inner_text("#claimable") == _open(claimable)
    assert page.locator("#by-contribution tbody tr").count() >= 1
    shoot(page, "rewards")
    page.click("#claim-button")
    page.wait_for_selector("#claim-status .ok")
    tx = page.inner_text("#claim-tx")
    after = node.contracts.token.balance_of(erin)
    assert after - before == claimable
    assert page.inner_text("#balance") == _open(after)
    receipt = node.client.w3.eth.get_transaction_receipt(tx)
    assert receipt["status"] == 1
    assert node.rewards.claimable(erin)["claimable"] == "0"


def test_account_credit_and_api_keys(web: WebWorld, page: Any) -> None:
    node, heidi = web.node, web.addr("heidi")
    before = node.ledger.credit(heidi)
    sign_in(page, web, "heidi")
    page.click("#whoami")
    page.wait_for_selector('main[data-rendered="#/account"]')
    page.fill("#f-deposit-amount", "5")
    page.click("#deposit-submit")
    page.wait_for_selector("#deposit-status .ok")
    credit = node.ledger.credit(heidi)
    assert int(credit["available"]) - int(before["available"]) == 5 * OPEN
    page.fill("#f-withdraw-amount", "2")
    page.click("#withdraw-submit")
    page.wait_for_selector("#withdraw-status .ok")
    page.wait_for_function("document.getElementById('acct-pending').textContent === '2'")
    page.click("#complete-withdrawal")
    assert "is in its delay until" in page.inner_text("#complete-status .error")
    page.fill("#f-key-label", "notebook")
    for scope in ("inference", "read", "write"):  # no scope at all: said, no key made
        page.uncheck(f"#f-key-scope-{scope}")
    page.click("#key-create")
    assert "No scope given" in page.inner_text("#keys-status .error")
    assert node.api_keys.list("heidi") == []
    page.check("#f-key-scope-inference")
    page.check("#f-key-scope-read")  # the defaults again
    page.click("#key-create")
    secret = page.inner_text("#new-key")
    assert node.api_keys.verify(secret).address == heidi
    assert node.api_keys.verify(secret).scopes == {"inference", "read"}
    key_id = secret[:12]
    page.click(f'#key-list tr[data-key="{key_id}"] button')
    page.wait_for_selector(f'#key-list tr[data-key="{key_id}"] >> text=revoked')
    with pytest.raises(AuthError):
        node.api_keys.verify(secret)
    shoot(page, "account")


def test_delegate_vote_and_apply_for_a_grant(web: WebWorld, page: Any) -> None:
    node, alice = web.node, web.addr("alice")
    sign_in(page, web, "alice")
    go(page, web, "governance")
    page.click("#delegate-submit")  # to herself
    page.wait_for_selector("#delegate-status .ok")
    assert node.contracts.token.get_votes(alice) == node.contracts.token.balance_of(alice)
    fast_forward(node, 2)  # votes count from the next second
    proposal = node.governance.propose(
        node.accounts.signer("alice"), {"slash_bps": "4000"}, "Slash 40 % instead of 50 %"
    )
    fast_forward(node, 61)  # past the devnet's voting delay: voting is open
    go(page, web, "governance")
    card = page.locator(f'.proposal[data-id="{proposal["id"]}"]')
    assert card.get_attribute("data-state") == "active"
    assert "Slash 40 % instead of 50 %" in card.inner_text()
    assert re.search(r"voting closes in \d+m", card.locator(".countdown").inner_text())
    card.locator('button[data-action="Vote for"]').click()
    card.locator(".ok").wait_for()
    shown = node.governance.show(proposal["id"])
    assert (
        int(shown["votes"]["for"])
        == node.contracts.token.get_past_votes(alice, shown["snapshot"])
        > 0
    )
    card.locator('button[data-action="Vote against"]').click()  # once only
    assert "already voted" in card.locator(".error").inner_text()
    # an OpenCircle application: a bad milestone sum is refused in place, then accepted
    page.click("#apply summary")
    page.fill("#f-milestones", "10000, 10000")
    page.click("#apply-submit")
    assert "The milestones sum to 20000 OPEN" in page.inner_text("#apply-status .error")
    page.fill("#f-milestones", "10000, 20000")
    page.click("#apply-submit")
    page.wait_for_selector("#apply-status .ok")
    gid = int(re.search(r"Grant #(\d+)", page.inner_text("#apply-status")).group(1))
    grant = node.governance.grant(gid)
    assert grant["applicant"] == alice and grant["status"] == "pending"
    assert grant["milestones"] == [str(10_000 * OPEN), str(20_000 * OPEN)]
    go(page, web, "governance")
    assert page.locator(f'.grant[data-id="{gid}"]').count() == 1
    shoot(page, "governance")


def _open(wei: int) -> str:
    """The page's format: thousands separated, at most 4 decimals, trailing zeros dropped."""
    whole, frac = divmod(wei, OPEN)
    digits = f"{frac:018d}"[:4].rstrip("0")
    return f"{whole:,}" + (f".{digits}" if digits else "")


def test_create_fund_and_try_an_agent_that_retrieves(web: WebWorld, page: Any) -> None:
    """The Agents page: dave (the model's and the datanet's owner) creates an agent that
    retrieves from facts through the form (a name taken is refused next to it), funds its
    wallet, and grace tries it in the playground: the passages retrieved are shown with the
    records they came from, which her receipt names; dave sees the call and its earnings."""
    node = web.node
    sign_in(page, web, "dave")
    go(page, web, "agents")
    assert "No agents yet." in page.inner_text("main")
    page.fill("#f-name", "researcher")
    page.select_option("#f-model", "facts-lora")
    page.fill("#f-system_prompt", "Answer from the context.")
    page.fill("#f-price", "0.5")
    page.fill("#f-max_tokens", "8")
    page.select_option("#f-retrieval", ["facts"])
    page.fill("#f-retrieval_k", "2")
    page.click("#agent-submit")
    page.wait_for_selector("#agent-status .ok, #agent-status .error", timeout=60_000)
    assert page.locator("#agent-status .ok").count() == 1, page.inner_text("#agent-status")
    agent = node.agents.get("researcher")
    assert agent["owner"] == web.addr("dave") and agent["price"] == str(OPEN // 2)
    assert agent["config"]["retrieval"] == ["facts"] and agent["config"]["retrieval_k"] == 2
    assert page.get_attribute("#agent-created", "href") == "#/agents/researcher"
    page.click("#agent-submit")  # the same name again: the node's error, by the form
    page.wait_for_selector("#agent-status .error")
    assert "already exists" in page.inner_text("#agent-status")
    go(page, web, "agents/researcher")
    page.wait_for_selector('#agent-title[data-name="researcher"]')
    assert "facts (top 2 passages" in page.inner_text("#agent-config")
    page.fill("#f-amount", "2")
    page.click("#fund-submit")
    page.wait_for_selector("#fund-status .ok")
    assert page.inner_text("#wallet-available") == "2"
    assert node.agents.wallet("researcher")["available"] == str(2 * OPEN)
    go(page, web, "agents")
    row = page.locator('#agents tr[data-name="researcher"]')
    assert row.locator(".credit").inner_text() == "2" and "you" in row.inner_text()
    shoot(page, "agents")

    page.click("#signout")
    page.wait_for_selector("#signin-link")
    sign_in(page, web, "grace")
    denied = page.evaluate("fetch('/web/api/agents/researcher/activity').then(r => r.status)")
    assert denied == 403  # its calls and earnings are its owner's to see
    go(page, web, "agents/researcher")
    page.click("#agent-try")
    page.wait_for_selector("#chat-form")
    assert page.input_value("#f-model") == "agent/researcher"
    page.fill("#f-max_tokens", "8")
    before = int(node.ledger.credit(web.addr("grace"))["available"])
    page.fill("#f-message", QUESTION)
    page.press("#f-message", "Enter")
    page.wait_for_selector(".msg.assistant .answer", timeout=60_000)
    receipt_id = page.locator(".msg.assistant .answer").get_attribute("data-receipt")
    body = node.ledger.receipt(receipt_id)["receipt"]
    named = body["agent"]["retrieved"]
    # as many of the 2 passages as the context (160 tokens here) leaves room for
    assert body["agent"]["name"] == "researcher" and 1 <= len(named) <= 2
    rows = page.locator("#retrieved tbody tr")
    assert rows.count() == len(named)
    assert [int(rows.nth(i).get_attribute("data-contribution")) for i in range(len(named))] == [
        r["contribution"] for r in named
    ]
    assert f"record {named[0]['record']}" in rows.nth(0).inner_text()
    spent = before - int(node.ledger.credit(web.addr("grace"))["available"])
    assert spent == int(body["fee"]) and body["payouts"][-1] == {
        "account": web.addr("dave"),
        "role": "agent",
        "amount": str(OPEN // 2),
    }
    shoot(page, "playground-agent")

    page.click("#signout")
    page.wait_for_selector("#signin-link")
    sign_in(page, web, "dave")
    go(page, web, "agents/researcher")
    page.wait_for_selector("#agent-earnings")
    assert page.inner_text("#agent-calls") == "1" and page.inner_text("#agent-earned") == "0.5"
    calls = page.locator("#calls-to tbody tr")
    assert calls.count() == 1 and f"{len(named)} record(s) retrieved" in calls.first.inner_text()
    assert calls.first.locator("a").get_attribute("href") == f"#/receipts/{receipt_id}"
    shoot(page, "agent")
