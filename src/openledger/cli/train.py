"""`openledger train`, `openledger jobs …`, `openledger model …`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from openledger.cli import context
from openledger.cli.format import fmt_open, out, parse_open, print_json
from openledger.errors import ValidationError

jobs_app = typer.Typer(help="Training jobs: list, show, cancel, resume.", no_args_is_help=True)
model_app = typer.Typer(help="Published models: publish, list, show.", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_json(doc: Any) -> None:
    print_json(doc)


def run_job(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The factory's job runner (torch and transformers are imported here, not at start-up)."""
    from openledger.factory.runner import run_job as run

    return run(*args, **kwargs)


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationError(
            f"Cannot read the training config {path}: {exc}.",
            field="--config",
            value=str(path),
            fix="pass a YAML file of training keys (see --help).",
        ) from exc
    if not isinstance(doc, dict):
        raise ValidationError(
            f"The training config {path} is not a mapping.",
            field="--config",
            value=str(path),
            fix="write key: value lines.",
        )
    return doc


def train(
    datanet: Annotated[str | None, typer.Option(help="DATANET or DATANET@VERSION.")] = None,
    base: Annotated[str | None, typer.Option(help="Local HF directory or hub id.")] = None,
    method: Annotated[str | None, typer.Option(help="lora | dora | qlora")] = None,
    rank: Annotated[int | None, typer.Option()] = None,
    alpha: Annotated[float | None, typer.Option()] = None,
    target_modules: Annotated[
        str | None, typer.Option(help="Comma-separated, e.g. q_proj,v_proj")
    ] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    max_seq_len: Annotated[int | None, typer.Option()] = None,
    eval_split: Annotated[float | None, typer.Option()] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML with the same keys.")
    ] = None,
    detach: Annotated[bool, typer.Option(help="Queue it for the node's worker.")] = False,
    as_: Annotated[
        str | None,
        typer.Option(
            "--as", help="Account that trains and pays a priced snapshot (default: operator)."
        ),
    ] = None,
    pay: Annotated[
        bool, typer.Option("--pay", help="Pay the snapshot's training price if it is due.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Fine-tune an adapter on a datanet snapshot (runs in the foreground with progress). A
    priced snapshot shows its price before the job is queued; the account pays it (--pay)
    unless it contributed to the snapshot or owns the datanet."""
    node = context.node()
    doc = _load_config(config)
    datanet = datanet or doc.pop("datanet", None)
    base = base or doc.pop("base", None) or str(node.settings.layout.models_dir / "tiny-base")
    if not datanet:
        raise ValidationError(
            "No datanet given.",
            field="--datanet",
            fix="pass --datanet NAME[@VERSION] or put datanet: in --config.",
        )
    given = {
        "method": method,
        "rank": rank,
        "alpha": alpha,
        "lr": lr,
        "epochs": epochs,
        "batch_size": batch_size,
        "max_seq_len": max_seq_len,
        "eval_split": eval_split,
    }
    doc.update({k: v for k, v in given.items() if v is not None})
    if target_modules:
        doc["target_modules"] = [m.strip() for m in target_modules.split(",") if m.strip()]
    node.jobs.check_train(datanet, base, doc)  # every other refusal before any payment
    from openledger.cli.datanets import _address, pay_first

    access = pay_first(datanet, "train", as_, pay)
    payer = _address(as_) if as_ else None
    job = node.jobs.submit_train(datanet, base, doc, payer=payer, access=access)
    if detach:
        if as_json:
            return _print_json(job)
        return out.print(
            f"job {job['id']} queued: `openledger serve` runs it, or run it now "
            f"with `openledger jobs run {job['id']}`"
        )
    out.print(f"job {job['id']}: training on {job['params']['datanet']}@{job['params']['version']}")
    done = run_job(node.jobs, node.snapshots, job["id"], progress=not as_json)
    _report(done, as_json)


def _report(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        return _print_json(job)
    r = job["result"] or {}
    out.print(
        f"job {job['id']} {job['status']}: {r.get('steps')} steps; eval perplexity "
        f"base {r.get('base_eval_ppl')} → adapter {r.get('adapter_eval_ppl')}; "
        f"adapter in {r.get('adapter_dir')}; loss curve {job.get('loss_curve')}"
    )


@jobs_app.command("list")
def jobs_list(status: str | None = None, limit: int = 50, as_json: Json = False) -> None:
    """Jobs, newest first."""
    page = context.node().jobs.list(status=status, limit=limit)
    if as_json:
        return _print_json(page)
    table = Table(title="Jobs")
    for col in ("id", "kind", "status", "datanet", "base", "created"):
        table.add_column(col)
    for j in page["items"]:
        p = j["params"]
        table.add_row(
            str(j["id"]),
            j["kind"],
            j["status"],
            f"{p['datanet']}@{p['version']}",
            Path(p["base"]).name,
            j["created_at"][:19],
        )
    out.print(table)


@jobs_app.command("show")
def jobs_show(job: int, as_json: Json = False) -> None:
    """One job: status, parameters, latest metrics, loss-curve image."""
    doc = context.node().jobs.get(job)
    if as_json:
        return _print_json(doc)
    out.print(
        f"job {doc['id']} ({doc['kind']}): {doc['status']}"
        + (f" — {doc['error']}" if doc["error"] else "")
    )
    out.print(f"work dir {doc['work_dir']}; {doc['metrics']['steps']} metric rows")
    if doc["metrics"]["last"]:
        out.print(f"last: {json.dumps(doc['metrics']['last'])}")
    if doc["loss_curve"]:
        out.print(f"loss curve: {doc['loss_curve']}")


@jobs_app.command("cancel")
def jobs_cancel(job: int) -> None:
    """Cancel a queued job, or ask a running one to stop at its next step (resumable)."""
    doc = context.node().jobs.cancel(job)
    out.print(f"job {job}: {'cancelled' if doc['status'] == 'cancelled' else 'cancel requested'}")


@jobs_app.command("resume")
def jobs_resume(job: int, detach: bool = False, as_json: Json = False) -> None:
    """Resume a failed, cancelled or crashed job from its newest checkpoint."""
    node = context.node()
    if detach:
        node.jobs.requeue(job)
        return out.print(f"job {job} queued to resume; `openledger serve` runs it")
    _report(run_job(node.jobs, node.snapshots, job, resume=True, progress=not as_json), as_json)


@jobs_app.command("worker")
def jobs_worker(
    interval: Annotated[float, typer.Option(help="Seconds between looks at the queue.")] = 2.0,
    once: Annotated[bool, typer.Option(help="Claim at most one job, run it, exit.")] = False,
) -> None:
    """Run queued jobs from this node's database until stopped (Ctrl-C): what `serve` does
    beside the API, on its own (e.g. on a GPU machine). Workers on one database take turns;
    a job whose worker dies is requeued and finishes on another (OPENLEDGER_JOB_HEARTBEAT_S,
    OPENLEDGER_JOB_STALE_AFTER_S)."""
    import os
    import time

    from openledger.factory.worker import JobWorker

    worker = JobWorker(context.node().jobs, interval=interval)
    out.print(f"job worker (pid {os.getpid()}): waiting for queued jobs")
    try:
        while True:
            started = worker.tick()
            if started is not None:
                out.print(f"job {started}: running in process {worker.current.pid}")
            if once and worker.current is not None:
                worker.current.wait()
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        out.print("job worker stopped; a running job goes on in its own process")


@jobs_app.command("run", hidden=True)
def jobs_run(job: int, quiet: bool = False) -> None:
    """Run a queued job in this process (what the worker spawns)."""
    node = context.node()
    status = node.jobs.get(job)["status"]
    run_job(node.jobs, node.snapshots, job, resume=status != "queued", progress=not quiet)


@model_app.command("publish")
def publish(
    job: int,
    name: Annotated[str, typer.Option(help="Model name.")],
    price_in: Annotated[str, typer.Option(help="OPEN per 1,000 prompt tokens.")] = "0.001",
    price_out: Annotated[str, typer.Option(help="OPEN per 1,000 completion tokens.")] = "0.002",
    as_: Annotated[str, typer.Option("--as", help="Owner account.")] = "operator",
    attribution: Annotated[
        str,
        typer.Option(
            help="Attribution policy: gradient, spans, rag or a mix such as gradient:0.7,spans:0.3."
        ),
    ] = "gradient",
    as_json: Json = False,
) -> None:
    """Save the adapter (PEFT safetensors + model card) and register it on chain."""
    from openledger.attribution.policy import parse_policy

    node = context.node()
    doc = node.models.publish(
        job,
        name=name,
        price_in=parse_open(price_in, field="--price-in"),
        price_out=parse_open(price_out, field="--price-out"),
        signer=node.accounts.signer(as_),
        attribution_policy=parse_policy(attribution),
    )
    if as_json:
        return _print_json(doc)
    out.print(
        f"model {doc['name']!r} registered on chain as #{doc['id']}; adapter "
        f"{doc['adapter_sha256'][:16]}… in {doc['adapter_dir']}"
    )


@model_app.command("list")
def model_list(as_json: Json = False) -> None:
    """Published models."""
    page = context.node().models.list()
    if as_json:
        return _print_json(page)
    table = Table(title=f"Models ({page['total']})")
    for col in ("id", "name", "owner", "base", "price in", "price out", "data"):
        table.add_column(col)
    for m in page["items"]:
        data = ", ".join(f"{d['datanet']}@{d['version']}" for d in m["card"]["data"])
        table.add_row(
            str(m["id"]),
            m["name"],
            m["owner"],
            Path(m["base"]).name,
            fmt_open(int(m["price_in"])),
            fmt_open(int(m["price_out"])),
            data,
        )
    out.print(table)


@model_app.command("show")
def model_show(model: str, as_json: Json = False) -> None:
    """A published model with its lineage and metrics."""
    doc = context.node().models.get(model)
    if as_json:
        return _print_json(doc)
    owner = context.label(doc["owner"])
    out.print(f"[bold]{doc['name']}[/] (#{doc['id']}) by {owner}, base {doc['base']}")
    out.print(f"adapter sha256 {doc['adapter_sha256']} in {doc['adapter_dir']}")
    out.print(f"snapshot roots {', '.join(doc['snapshot_roots'])}")
    out.print(f"metrics {json.dumps(doc['card']['metrics'])}")


def register(root: typer.Typer) -> None:
    root.command()(train)
    root.add_typer(jobs_app, name="jobs")
    root.add_typer(model_app, name="model")
