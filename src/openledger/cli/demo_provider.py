"""The demo's compute provider (docs/providers.md): a second node home, whose key is carol's,
pulls the demo's model from this node over HTTP (checked against ModelRegistry), stakes and
registers in ProviderRegistry, and serves this node's paid requests with its own engine,
signing each answer; governance sets the compute share first. Both HTTP faces run in this
process's threads for the length of the demo's paid round."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import Any

from openledger.cli.format import fmt_open, out
from openledger.node import Node
from openledger.units import OPEN

PROVIDER = "carol"  # a validator of the datanet who also runs compute
STAKE = 100 * OPEN
COMPUTE_BPS = 500  # 5 % of each fee it serves, out of the platform's 10 %


def _serve(app: Any, host: str = "127.0.0.1") -> tuple[Any, str]:
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, name=f"demo-http-{port}", daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, f"http://{host}:{port}"


def _compute_share(node: Node) -> None:
    from openledger.governance.devnet import pass_proposal

    if node.contracts.params.snapshot().compute_share_bps == COMPUTE_BPS:
        return
    fn = node.contracts.params.contract.functions.setParam("compute_share_bps", COMPUTE_BPS)
    pid = pass_proposal(
        node.contracts,
        node.accounts.signer("operator"),
        [fn],
        "demo: pay compute providers 5 % of the fees they serve",
    )
    node.params.invalidate()
    out.print(
        f"governance proposal #{pid} passed: compute_share_bps = {COMPUTE_BPS} "
        "(carved from the platform's share)"
    )


@contextmanager
def running(node: Node, model: str) -> Iterator[str]:
    """The provider serving this node's requests for ``model``; yields its address."""
    from openledger.app import create_app
    from openledger.home import init_home
    from openledger.ledger.receipts.canonical import ReceiptSigner
    from openledger.providers.jobs import JobChecker
    from openledger.providers.server import create_provider_app

    out.rule("compute provider")
    _compute_share(node)
    key = node.accounts.signer(PROVIDER).key
    home = node.settings.home / "compute-provider"
    settings = replace(
        node.settings,
        home=home,
        db_url=f"sqlite:///{home / 'openledger.db'}",
        addresses_file=node.settings.addresses_path,
    )
    if not settings.layout.operator_keystore.exists():
        init_home(settings, "demo", private_key="0x" + bytes(key).hex())
    provider = Node(settings, password_source=lambda: "demo")
    with ExitStack() as stack:
        stack.callback(provider.close)
        gateway, gateway_url = _serve(create_app(node))
        stack.callback(setattr, gateway, "should_exit", True)
        signer = provider.accounts.signer("operator")
        pulled = provider.providers.pull(gateway_url, [model])
        serving = provider.provider_serving
        app = create_provider_app(
            serving, ReceiptSigner(bytes(key)), JobChecker([node.accounts.operator_address()])
        )
        server, url = _serve(app)
        stack.callback(setattr, server, "should_exit", True)
        registered = provider.providers.show(signer.address)
        if not registered["active"]:
            doc = provider.providers.register(signer, url, [pulled[0]["name"]], STAKE)
            out.print(
                f"{PROVIDER} pulled {pulled[0]['name']} from this node (adapter checked "
                f"against ModelRegistry), staked {fmt_open(STAKE)} OPEN and registered "
                f"as a compute provider of model #{doc['model_ids'][0]} at {url}"
            )
        else:
            provider.contracts.providers.set_endpoint(signer, url)
            out.print(f"{PROVIDER} is a registered compute provider already; it serves at {url}")
        node.provider_router.invalidate()
        out.print(
            f"paid requests for {pulled[0]['name']} now run on {PROVIDER}'s engine; each "
            "answer comes back signed by its key, and its receipt names it"
        )
        yield signer.address
