"""Compute providers as a service (docs/providers.md): pull the models to serve, check they
load, register on chain with a stake, list, exit and withdraw; and, for a gateway, the
directory of providers with what each served and earned here (``directory``, ``detail``).

A provider is an OpenLedger home whose operator key is the provider's key: it signs the
registration and every compute statement. Its models are pulled from a gateway into the
home (``PulledModels``) and checked against ModelRegistry; registration first loads each of
them on the provider's own engine and generates a token, so a model the provider cannot
serve is refused before any stake moves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from openledger.errors import ContractNotDeployedError, ValidationError
from openledger.providers.catalogue import PulledModels
from openledger.providers.pull import pull_model

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from openledger.chain.bindings import Provider
    from openledger.chain.deploy import Contracts
    from openledger.serving.service import ServingService

MAX_MODELS = 16
MAX_ENDPOINT = 256


def provider_dict(p: Provider) -> dict[str, Any]:
    return {
        "address": p.address,
        "endpoint": p.endpoint,
        "stake": str(p.stake),
        "active": p.active,
        "unlock_at": p.unlock_at,
        "registered_at": p.registered_at,
        "model_ids": list(p.model_ids),
    }


class ProviderService:
    def __init__(
        self,
        contracts: Callable[[], Contracts],
        catalogue: PulledModels,
        serving: Callable[[], ServingService],
        *,
        served: Callable[[], Mapping[str, int]] = dict,
        earnings: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        """``served``: the requests this gateway has had each provider finish since it
        started (``ProviderRouter.served``); ``earnings``: what an account earned on this
        gateway (``RewardsService.earnings``)."""
        self._contracts = contracts
        self.catalogue = catalogue
        self._serving = serving
        self._served = served
        self._earnings = earnings

    def _registry(self) -> Any:
        registry = self._contracts().providers
        if registry is None:
            raise ContractNotDeployedError(
                "this deployment has no ProviderRegistry.",
                field="addresses",
                fix="deploy it once: openledger provider deploy.",
            )
        return registry

    # ------------------------------------------------------------------ models

    def pull(self, gateway: str, names: list[str]) -> list[dict[str, Any]]:
        """Download ``names`` from ``gateway``, each checked against ModelRegistry."""
        models = self._contracts().models

        def registered(model_id: int) -> str:
            return bytes(models.model(model_id).adapter_hash).hex()

        return [pull_model(gateway, n, self.catalogue, registered) for n in names]

    def check_loadable(self, names: list[str]) -> None:
        """Load each model on this provider's engine and generate one token (ValidationError
        naming the model when it cannot be served here)."""
        from openledger.serving.sampling import SamplingParams

        serving = self._serving()
        for name in names:
            try:
                ids = serving.encode_prompt("Hello")
                serving.submit(name, ids, SamplingParams(max_tokens=1, temperature=0)).wait(120)
            except Exception as exc:
                raise ValidationError(
                    f"this provider cannot serve {name!r}: {exc}",
                    field="model",
                    value=name,
                    fix="pull it again (openledger provider pull NAME --gateway URL) and serve "
                    "it on the base it was trained on (its base must load on this machine).",
                ) from exc

    # ------------------------------------------------------------------ the registry

    def register(
        self, signer: LocalAccount, endpoint: str, models: list[str], stake: int
    ) -> dict[str, Any]:
        """Register ``signer`` as the provider of ``models`` (pulled names) at ``endpoint``
        with ``stake`` wei of OPEN: every model must load first."""
        if not endpoint.startswith(("http://", "https://")) or len(endpoint) > MAX_ENDPOINT:
            raise ValidationError(
                f"endpoint {endpoint[:80]!r} is not an http(s) URL of at most "
                f"{MAX_ENDPOINT} characters.",
                field="endpoint",
                value=endpoint[:80],
                fix="give the URL gateways reach this provider at, e.g. http://host:8100.",
            )
        if not 1 <= len(models) <= MAX_MODELS or len(set(models)) != len(models):
            raise ValidationError(
                f"a provider lists 1 to {MAX_MODELS} distinct models, got {len(models)}.",
                field="models",
                value=len(models),
                fix="name each model once.",
            )
        cards = [self.catalogue.get(m) for m in models]
        registry = self._registry()
        least = registry.min_stake()
        if stake < least:
            raise ValidationError(
                f"a stake of {stake} wei is below the registry's minimum of {least}.",
                field="stake",
                value=str(stake),
                fix=f"stake at least {least} wei of OPEN.",
            )
        self.check_loadable(models)
        contracts = self._contracts()
        contracts.token.approve(signer, registry.address, stake)
        result = registry.register(signer, endpoint, [int(c["id"]) for c in cards], stake)
        return {**provider_dict(registry.provider(signer.address)), "tx_hash": result.tx_hash}

    def set_models(self, signer: LocalAccount, models: list[str]) -> dict[str, Any]:
        cards = [self.catalogue.get(m) for m in models]
        self.check_loadable(models)
        registry = self._registry()
        result = registry.set_models(signer, [int(c["id"]) for c in cards])
        return {**provider_dict(registry.provider(signer.address)), "tx_hash": result.tx_hash}

    def list(self) -> list[dict[str, Any]]:
        return [provider_dict(p) for p in self._registry().providers() if p.registered_at]

    def show(self, address: str) -> dict[str, Any]:
        return provider_dict(self._registry().provider(address))

    def directory(self) -> list[dict[str, Any]]:
        """Every registered provider (:meth:`list`: active and exited), with ``served``: the
        requests this gateway has had it finish since it started."""
        served = self._served()
        return [{**p, "served": served.get(p["address"], 0)} for p in self.list()]

    def detail(self, address: str) -> dict[str, Any]:
        """One provider as ProviderRegistry holds it (:meth:`show`), with ``served`` (as in
        :meth:`directory`) and ``earnings``: what it earned on this gateway."""
        doc = self.show(address)
        doc["served"] = self._served().get(doc["address"], 0)
        if self._earnings is not None:
            doc["earnings"] = self._earnings(doc["address"])
        return doc

    def exit(self, signer: LocalAccount) -> dict[str, Any]:
        registry = self._registry()
        result = registry.exit(signer)
        return {**provider_dict(registry.provider(signer.address)), "tx_hash": result.tx_hash}

    def withdraw(self, signer: LocalAccount) -> dict[str, Any]:
        registry = self._registry()
        before = registry.provider(signer.address).stake
        result = registry.withdraw(signer)
        return {"address": signer.address, "withdrawn": str(before), "tx_hash": result.tx_hash}
