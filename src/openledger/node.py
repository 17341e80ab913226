"""Composition root: builds every service from the settings. Nothing else wires services."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openledger.config import Settings
from openledger.units import OPEN

# Every service is imported where it is built: a command pays only for what it uses (the
# CLI's `--help` loads none of torch, transformers, vyper or web3; tests/cli/test_startup.py).
if TYPE_CHECKING:
    from openledger.agents.service import AgentService
    from openledger.attribution.service import AttributionService
    from openledger.auth.keys import ApiKeyService
    from openledger.auth.operator_token import OperatorToken
    from openledger.auth.prepared import Finisher, PreparedWrites
    from openledger.chain.accounts import AccountBook
    from openledger.chain.client import ChainClient
    from openledger.chain.deploy import Addresses, Contracts
    from openledger.chain.devnet import Devnet, DevnetStatus
    from openledger.chain.sync import EventSync
    from openledger.datanets.contribute import ContributionService
    from openledger.datanets.neardup import NearDupRegistry
    from openledger.datanets.registry import DatanetService
    from openledger.datanets.review import ReviewService
    from openledger.datanets.snapshots import SnapshotService
    from openledger.factory.jobs import JobService
    from openledger.factory.publish import ModelService
    from openledger.governance.grants import GrantsService
    from openledger.governance.service import GovernanceService
    from openledger.ledger.access import AccessService
    from openledger.ledger.credit.escrow import EscrowService
    from openledger.ledger.paid.inference import PaidInference
    from openledger.ledger.pricing.params import ParamsCache
    from openledger.ledger.receipts.canonical import ReceiptSigner
    from openledger.ledger.service import LedgerService
    from openledger.ledger.settlement.audit import Auditor
    from openledger.ledger.settlement.epochs import EpochService
    from openledger.ledger.settlement.rewards import RewardsService
    from openledger.metrics import NodeMetrics
    from openledger.providers.router import ProviderRouter
    from openledger.providers.service import ProviderService
    from openledger.serving.service import ServeConfig, ServingService
    from openledger.store.blobs import BlobStore
    from openledger.store.db import Database

DEV_OPEN_GRANT = 1_000_000 * OPEN  # OPEN each named dev account receives on a new devnet
OPERATOR_DEV_ETH = 1_000 * 10**18
DEV_ETH = 10_000 * 10**18  # what anvil gives each of its own accounts


@dataclass(frozen=True)
class ChainUp:
    status: DevnetStatus
    addresses: Addresses
    deployed_now: bool


class Node:
    """One OpenLedger node: settings in, services out (built lazily, once)."""

    def __init__(self, settings: Settings, *, password_source=None) -> None:
        self.settings = settings
        if password_source is None:
            from openledger.chain.accounts import prompt_password

            password_source = prompt_password
        self._password_source = password_source

    @cached_property
    def db(self) -> Database:
        from openledger.store.db import Database

        return Database.open(self.settings.db_url)

    @cached_property
    def blobs(self) -> BlobStore:
        from openledger.store.s3blobs import open_blob_store

        return open_blob_store(self.settings.blobs_url, self.settings.layout.blobs_dir)

    @cached_property
    def accounts(self) -> AccountBook:
        from openledger.chain.accounts import AccountBook

        return AccountBook(self.settings, password_source=self._password_source)

    @cached_property
    def client(self) -> ChainClient:
        from openledger.chain.client import ChainClient

        return ChainClient(
            self.settings.rpc_url,
            chain_id=self.settings.chain_id,
            timeout=self.settings.rpc_timeout,
        )

    @cached_property
    def devnet(self) -> Devnet:
        from openledger.chain.devnet import Devnet

        return Devnet(self.settings)

    @cached_property
    def contracts(self) -> Contracts:
        from openledger.chain.deploy import Addresses, Contracts

        return Contracts(self.client, Addresses.load(self.settings.addresses_path))

    @cached_property
    def sync(self) -> EventSync:
        """The chain event sync, with the ledger's handlers (credit from the escrow's events,
        datanet access fees, fresh protocol parameters after any change)."""
        from openledger.chain.sync import EventSync
        from openledger.ledger import access
        from openledger.ledger.credit import events as credits

        sync = EventSync(self.contracts, self.db, confirmations=self.settings.confirmations)
        credits.subscribe(sync)
        access.subscribe(
            sync,
            access.AccessPaidHandler(
                self.params, self.settings.chain_id, self.accounts.operator_address
            ),
        )
        for event in ("ParamChanged", "FeeSplitChanged", "TreasuryChanged"):
            sync.subscribe(f"ProtocolParams.{event}", lambda s, r: self.params.invalidate())
        from openledger.agents import service as agent_events

        agent_events.subscribe(sync)
        return sync

    def sync_chain(self) -> int:
        """Apply new chain events now; returns how many were applied."""
        if "sync" not in self.__dict__ and self._sync_is_current():
            return 0
        undone = self.sync.undone
        applied = self.sync.poll()
        if (applied or self.sync.undone != undone) and "ledger" in self.__dict__:
            self.ledger.invalidate_credit()
        return len(applied)

    def _sync_is_current(self) -> bool:
        """True when the sync's cursor is at the chain's head (one eth_blockNumber and one
        query): a read then skips building the web3 sync (~1 s of imports)."""
        from openledger.chain.head import END_OF_BLOCK, confirmed_head
        from openledger.errors import OpenLedgerError
        from openledger.store import repo

        try:
            s = self.settings
            head = confirmed_head(s.rpc_url, s.confirmations, timeout=s.rpc_timeout)
        except OpenLedgerError:
            return False  # the full sync reports the failure with its usual error
        with self.db.session() as s:
            cursor = repo.get_cursor(s, "chain")
        return cursor == (head, END_OF_BLOCK)

    def health(self) -> dict[str, Any]:
        """Whether the store and the chain answer: ``store`` (its schema revision) and
        ``chain`` (chain id, block, URL), each with ``ok`` (and the error when it does not
        answer); ``status`` is ``ok`` only when both do, else ``degraded``."""
        from sqlalchemy import text

        from openledger.errors import OpenLedgerError

        checks: dict[str, Any] = {}
        try:
            with self.db.session() as s:
                s.execute(text("SELECT 1"))
            checks["store"] = {"ok": True, "revision": self.db.current_revision()}
        except OpenLedgerError as exc:
            checks["store"] = {"ok": False, "error": exc.message}
        try:
            checks["chain"] = {
                "ok": True,
                "chain_id": self.client.check(),
                "block": self.client.block_number(),
                "url": self.settings.rpc_url,
            }
        except OpenLedgerError as exc:
            checks["chain"] = {"ok": False, "error": exc.message, "fix": exc.fix}
        ok = all(c["ok"] for c in checks.values())
        return {"status": "ok" if ok else "degraded", **checks}

    # -- datanets --------------------------------------------------------------------------
    def _contracts(self) -> Contracts:
        return self.contracts

    @cached_property
    def neardup(self) -> NearDupRegistry:
        from openledger.datanets.neardup import NearDupRegistry

        return NearDupRegistry(self.settings.layout.datanets_dir, self.db)

    @cached_property
    def datanets(self) -> DatanetService:
        from openledger.datanets.registry import DatanetService

        return DatanetService(self.db, self.blobs, self._contracts)

    @cached_property
    def contributions(self) -> ContributionService:
        from openledger.datanets.contribute import ContributionService

        return ContributionService(self.db, self.blobs, self._contracts, self.neardup)

    @cached_property
    def reviews(self) -> ReviewService:
        from openledger.datanets.review import ReviewService

        return ReviewService(
            self.db, self._contracts, self.neardup, withheld=lambda c, a: self.access.withheld(c, a)
        )

    @cached_property
    def snapshots(self) -> SnapshotService:
        from openledger.datanets.snapshots import SnapshotService

        return SnapshotService(self.db, self.blobs, self._contracts, admit=self._admit_export)

    def _admit_export(self, datanet: str, version: int, account: str | None) -> object:
        return self.access.admit(datanet, version, "export", account)

    def _admit_training(
        self, datanet: str, version: int, account: str | None, access: int | None
    ) -> object:
        return self.access.admit(datanet, version, "train", account, access=access)

    # -- model factory ---------------------------------------------------------------------
    @cached_property
    def jobs(self) -> JobService:
        from openledger.factory.jobs import JobService

        s = self.settings
        return JobService(
            self.db,
            self.snapshots,
            s.layout.jobs_dir,
            heartbeat_s=s.job_heartbeat_s,
            stale_after_s=s.job_stale_after_s,
            admit=self._admit_training,
            spend=lambda grant, job: self.access.spend(grant, job),
        )

    @cached_property
    def models(self) -> ModelService:
        from openledger.factory.publish import ModelService

        return ModelService(
            self.db,
            self.jobs,
            self._contracts,
            self.settings.layout.models_dir,
            check_adapter=self._check_servable,
        )

    def _check_servable(self, name: str, adapter_dir: Path, base: str) -> None:
        """Publishing refuses an adapter the serving engine could not serve on its base."""
        from openledger.serving.checks import check_adapter

        check_adapter(name, adapter_dir, base, max_rank=self.settings.serve_max_lora_rank)

    # -- agents ----------------------------------------------------------------------------
    @cached_property
    def agents(self) -> AgentService:
        from openledger.agents.retrieval import AgentRetrieval
        from openledger.agents.service import AgentService
        from openledger.agents.wallet import AgentWallets

        wallets = AgentWallets(
            self.settings.layout.keystore_dir,
            self.settings.chain_id,
            lambda: self.accounts.signer("operator"),
            self._password_source,
        )
        retrieval = AgentRetrieval(
            self.datanets, self.snapshots, lambda: self.attribution, lambda: self.access
        )
        return AgentService(
            self.db,
            self._contracts,
            self.models,
            self.datanets,
            wallets=wallets,
            credit=lambda a: self.ledger.credit(a),
            sync=self.sync_chain,
            retrieval=retrieval,
        )

    # -- proof of attribution -------------------------------------------------------------
    @cached_property
    def attribution(self) -> AttributionService:
        from openledger.attribution.service import AttributionService

        return AttributionService(
            self.models, self.jobs, self.snapshots, self.settings.layout.attribution_dir
        )

    # -- serving API -----------------------------------------------------------------------
    @cached_property
    def api_keys(self) -> ApiKeyService:
        from openledger.auth.keys import ApiKeyService

        return ApiKeyService(self.db, self.accounts)

    @cached_property
    def operator_token(self) -> OperatorToken:
        from openledger.auth.operator_token import OperatorToken

        return OperatorToken(self.settings.home)

    @cached_property
    def prepared(self) -> PreparedWrites:
        """Writes prepared for wallets, waiting for their transactions (in the database)."""
        from openledger.auth.prepared import PreparedWrites

        return PreparedWrites(self.db, lambda: self.client, self.finisher)

    def finisher(self, kind: str) -> Finisher:
        """The service method a prepared write names (``"datanets.finish_create"``…)."""
        from openledger.auth.prepared import FINISHERS

        if kind not in FINISHERS:
            raise ValueError(f"unknown finisher {kind!r}")
        service, method = kind.split(".")
        return getattr(getattr(self, service), method)

    # -- ledger (payable inference) -------------------------------------------------------
    @cached_property
    def params(self) -> ParamsCache:
        from openledger.ledger.pricing.params import ParamsCache

        return ParamsCache(
            lambda: self.contracts.params.version(), lambda: self.contracts.params.snapshot()
        )

    def receipt_signer(self) -> ReceiptSigner:
        """The operator key as the fast signer of receipts, jobs and statements (EIP-191)."""
        from openledger.ledger.receipts.canonical import ReceiptSigner

        return ReceiptSigner(bytes(self.accounts.signer("operator").key))

    @cached_property
    def ledger(self) -> LedgerService:
        from openledger.ledger.service import LedgerService

        ledger = LedgerService(
            self.db,
            self.params,
            self.receipt_signer,
            chain_id=self.settings.chain_id,
            pricing_process=self.settings.ledger_pricing_process != 0,
        )
        if "metrics" in self.__dict__:
            ledger.observe(self.metrics)
        return ledger

    @cached_property
    def epochs(self) -> EpochService:
        from openledger.ledger.settlement.epochs import EpochService

        return EpochService(
            self.db, self._contracts, self.params, lambda: self.accounts.signer("operator")
        )

    @cached_property
    def rewards(self) -> RewardsService:
        from openledger.ledger.settlement.rewards import RewardsService

        return RewardsService(self.db, self._contracts)

    @cached_property
    def escrow(self) -> EscrowService:
        from openledger.ledger.credit.escrow import EscrowService

        return EscrowService(self._contracts, self.params, self.sync_chain, self.ledger.credit)

    @cached_property
    def paid(self) -> PaidInference:
        from openledger.ledger.paid.inference import PaidInference

        return PaidInference(self.ledger, self.serving, self.attribution)

    @cached_property
    def access(self) -> AccessService:
        """Datanet access fees: prices, payments, admission of exports and training."""
        from openledger.ledger.access import AccessService

        return AccessService(
            self.db,
            self._contracts,
            self.sync_chain,
            self.accounts.operator_address,
            check_training=lambda ref, base, config: self.jobs.check_train(ref, base, config),
        )

    @cached_property
    def auditor(self) -> Auditor:
        from openledger.ledger.settlement.audit import Auditor

        return Auditor(self.db, self._contracts, self.accounts.operator_address())

    # -- governance ------------------------------------------------------------------------
    @cached_property
    def governance(self) -> GovernanceService:
        from openledger.governance.service import GovernanceService

        return GovernanceService(self._contracts, on_executed=self._params_changed)

    @cached_property
    def grants(self) -> GrantsService:
        from openledger.governance.grants import GrantsService

        return GrantsService(self.governance)

    def _params_changed(self) -> None:
        if "params" in self.__dict__:
            self.params.invalidate()

    def gov_handover(self, owner_name: str, *, fund: int = 0) -> list[str]:
        """Hand the deployment to governance (deploying it first if missing)."""
        from openledger.governance.handover import hand_over

        done = hand_over(
            self.client, self.accounts.signer(owner_name), self.settings.addresses_path, fund=fund
        )
        for name in ("contracts", "sync"):
            self.__dict__.pop(name, None)
        self._params_changed()
        return done

    # -- serving (OpenLoRA) ----------------------------------------------------------------
    @cached_property
    def serving(self) -> ServingService:
        from openledger.serving.service import ServingService

        service = ServingService(self.models, self._serve_config())
        if "metrics" in self.__dict__:
            service.observe(self.metrics.serving_event)
        service.router = self.provider_router  # registered compute providers serve first
        return service

    @cached_property
    def provider_router(self) -> ProviderRouter:
        """The gateway role: requests for a model that registered compute providers serve
        go to them (docs/providers.md); the directory is read from ProviderRegistry."""
        from openledger.providers.router import ProviderRouter, Route

        def routes() -> list[Route]:
            if not self.settings.addresses_path.exists():
                return []
            registry = self.contracts.providers
            if registry is None:
                return []
            return [
                Route(p.address, p.endpoint, tuple(p.model_ids))
                for p in registry.providers()
                if p.active
            ]

        return ProviderRouter(routes, self.receipt_signer)

    # -- the compute provider role (docs/providers.md) -------------------------------------
    @cached_property
    def provider_serving(self) -> ServingService:
        """The provider's own engine over the models it pulled (no router: it serves them)."""
        from openledger.providers.catalogue import PulledModels
        from openledger.serving.service import ServingService

        catalogue = PulledModels(self.settings.home / "provider")
        return ServingService(catalogue, self._serve_config())  # type: ignore[arg-type]

    def _serve_config(self) -> ServeConfig:
        from openledger.serving.engine import EngineConfig
        from openledger.serving.service import ServeConfig

        s = self.settings
        engine = EngineConfig(
            max_batch=s.serve_max_batch,
            max_ctx=s.serve_max_ctx or None,
            device_slots=s.serve_device_slots,
            host_tier_bytes=s.serve_host_tier_mb << 20,
            max_lora_rank=s.serve_max_lora_rank,
        )
        return ServeConfig(s.serve_base, s.serve_device, engine)

    @cached_property
    def providers(self) -> ProviderService:
        from openledger.providers.catalogue import PulledModels
        from openledger.providers.service import ProviderService

        home = self.settings.home / "provider"
        return ProviderService(
            lambda: self.contracts,
            PulledModels(home),
            lambda: self.provider_serving,
            served=lambda: self.provider_router.served,
            earnings=lambda account: self.rewards.earnings(account),
        )

    # -- metrics ---------------------------------------------------------------------------
    @cached_property
    def metrics(self) -> NodeMetrics:
        """Prometheus metrics (``GET /metrics``): built by the API, so CLI commands never pay
        for them; services built before or after report to them."""
        from openledger.metrics import NodeMetrics

        metrics = NodeMetrics(self)
        if "ledger" in self.__dict__:
            self.ledger.observe(metrics)
        if "serving" in self.__dict__:
            self.serving.observe(metrics.serving_event)
        return metrics

    # -- devnet lifecycle ------------------------------------------------------------------
    def chain_up(self) -> ChainUp:
        """Start the devnet; deploy and fund the dev accounts on its first start.

        If this call started anvil and then fails (a wrong keystore password, say), it stops
        anvil again, so a failed `chain up` leaves no process behind.
        """
        from openledger.chain.deploy import Addresses, Contracts
        from openledger.errors import ContractNotDeployedError

        was_running = self.devnet.status().running
        status = self.devnet.up()
        try:
            self.client.check()
            path = self.settings.addresses_path
            try:
                addresses = Addresses.load(path)
                Contracts(self.client, addresses)  # verifies code at every address
                return ChainUp(status, addresses, deployed_now=False)
            except ContractNotDeployedError:
                pass
            addresses = self._deploy_devnet()
            addresses.save(path)
        except BaseException:
            if not was_running:
                self.devnet.down()
            raise
        self.__dict__.pop("contracts", None)
        return ChainUp(self.devnet.status(), addresses, deployed_now=True)

    def _deploy_devnet(self) -> Addresses:
        from openledger.chain.deploy import DEVNET_GOVERNANCE, Contracts, deploy_all

        operator = self.accounts.signer("operator")
        self.client.rpc("anvil_setBalance", [operator.address, hex(OPERATOR_DEV_ETH)])
        # Handed to governance at deploy, as on any network: the Timelock is the treasury and
        # owns ProtocolParams, RewardDistributor and Grants (`treasury` is only the
        # constructor's placeholder); the operator keeps InferenceEscrow and settles epochs.
        # Parameters change by proposal; `openledger chain advance` moves the devnet clock
        # through the waits (docs/governance.md).
        addresses = deploy_all(
            self.client,
            operator,
            treasury=operator.address,
            operator=operator.address,
            governance=DEVNET_GOVERNANCE,
            hand_over=True,
        )
        contracts = Contracts(self.client, addresses)
        for name in self.accounts.names():
            if name != "operator":
                contracts.token.transfer(operator, self.accounts.address(name), DEV_OPEN_GRANT)
        return addresses

    def create_account(self, name: str) -> dict[str, object]:
        """`openledger accounts create NAME` (devnet only): a new key in the home, funded with
        the dev accounts' ETH and OPEN from the deployer (impersonated, so any home sharing
        the devnet can do it)."""
        from openledger.chain.calls import build
        from openledger.chain.deploy import Addresses

        if not self.settings.is_devnet:
            self._devnet_only("accounts are created")
        self.client.check()
        address = self.accounts.create_dev_account(name)
        token = self.contracts.token
        deployer = (
            Addresses.load(self.settings.addresses_path).deployer
            or self.accounts.operator_address()
        )
        self.client.rpc("anvil_setBalance", [address, hex(DEV_ETH)])
        call = build(token, "transfer", address, DEV_OPEN_GRANT)
        self.client.rpc("anvil_impersonateAccount", [deployer])
        try:
            send = {"from": deployer, "to": call.to, "data": call.data}
            tx = self.client.rpc("eth_sendTransaction", [send])
            self.client.wait_receipt(tx, label="fund the new account")
        finally:
            self.client.rpc("anvil_stopImpersonatingAccount", [deployer])
        return {
            "name": name,
            "address": address,
            "eth": str(self.client.eth_balance(address)),
            "open": str(token.balance_of(address)),
            "tx_hash": tx,
        }

    def _devnet_only(self, what: str) -> None:
        from openledger.errors import ConflictError

        raise ConflictError(
            f"The chain at {self.settings.rpc_url} is not the embedded devnet; {what} only there.",
            field="chain",
            value=self.settings.rpc_url,
            fix="unset OPENLEDGER_CHAIN_URL to use the devnet (`openledger chain up`).",
        )

    def chain_advance(self, seconds: int) -> dict[str, int]:
        """Move the devnet's clock ``seconds`` forward and mine a block (`openledger chain
        advance`); refused on any other chain, whose clock only time moves."""
        from openledger.errors import ConflictError
        from openledger.governance.devnet import advance_devnet_clock

        if not self.settings.is_devnet:
            raise ConflictError(
                f"The chain at {self.settings.rpc_url} is not the embedded devnet; only the "
                "devnet's clock can be moved.",
                field="chain",
                value=self.settings.rpc_url,
                fix="wait for the time to pass on this network, or unset OPENLEDGER_CHAIN_URL "
                "to use the devnet (`openledger chain up`).",
            )
        timestamp = advance_devnet_clock(self.client, seconds)
        return {"seconds": seconds, "timestamp": timestamp, "block": self.client.block_number()}

    def close(self) -> None:
        if "serving" in self.__dict__:
            self.serving.close()
        if "provider_router" in self.__dict__:
            self.provider_router.close()
        if "provider_serving" in self.__dict__:
            self.provider_serving.close()
        if "ledger" in self.__dict__:
            self.ledger.close()
        if "db" in self.__dict__:
            self.db.dispose()
