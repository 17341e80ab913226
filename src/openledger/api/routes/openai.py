"""/v1: the OpenAI-compatible API over the node's OpenLoRA engine.

Every route needs an API key (``Authorization: Bearer olk_…``); its account pays. A request
is checked and tokenised off the event loop (the first one loads the base model); then its
choices are held for and submitted (``ledger.paid_call.PaidCall``: the largest fee of each
choice is held against the account's credit, 402 in OpenAI's format when it is short, before
the engine sees anything); their events come back to this loop through a
``serving.stream_bridge.StreamBridge``. A client that goes away cancels its engine requests,
which frees their cache rows and adapter slots at the engine's next step.

Once every choice has ended the call is settled: each choice's text is attributed and
charged, one signed receipt per choice; what is billed when (``n`` > 1, cancelled, failed
and abandoned calls) is ``PaidCall``'s to say. Chat attribution uses the rendered prompt:
the chat template's text, generation prompt included, exactly what the model continued.

Responses carry ``receipt_id`` (the first choice's), ``receipt_ids`` and ``attributions``
(one per choice, in choice order) and ``attribution`` (the first choice's) as extra
top-level fields; a stream carries them on its last chunk before ``[DONE]`` (``api.sse``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from openledger.agents.runner import AgentRunner
from openledger.agents.service import AgentRun
from openledger.api import paid_run
from openledger.api.openai_schemas import (
    AssistantMessage,
    ChatChoice,
    ChatCompletionRequest,
    CompletionChoice,
    CompletionRequest,
    ModelCard,
    ModelList,
    PaidChatCompletion,
    PaidCompletion,
    agent_card,
    chat_chunk,
    completion_chunk,
    model_card,
    new_id,
    now,
    usage,
)
from openledger.errors import ValidationError
from openledger.http.credentials import Inferrer
from openledger.http.deps import NodeDep
from openledger.http.errors import fields_renamed
from openledger.http.prompt_budget import check_prompt_chars
from openledger.ledger.paid.call import PaidCall, committed_request
from openledger.serving.stream_bridge import StreamBridge

router = APIRouter(prefix="/v1", tags=["openai"])


# ---------------------------------------------------------------------------- models


@router.get("/models", response_model=ModelList)
def list_models(node: NodeDep, principal: Inferrer) -> ModelList:
    """The models this node serves, with their owners and prices (wei of OPEN per token),
    where each adapter is (``tier``, ``loaded``), and the engine's path and tiers."""
    serving = node.serving
    info = serving.engine_info()
    cards = [model_card(m, serving.status(m["name"]), info["warning"]) for m in serving.catalogue()]
    return ModelList(data=cards + _agent_cards(node, {c.id: c for c in cards}), serving=info)


def _agent_cards(node: Any, models: dict[str, ModelCard]) -> list[ModelCard]:
    """The agents offered as models (``AgentService.offered``), as ``agent/NAME``
    (docs/agents.md): the model's prices per token, the agent's price per call in
    ``agent``."""
    return [
        agent_card(
            models[a["model"]],
            a["name"],
            a["owner"],
            int(a["id"]),
            runs=a["model"],
            price=a["price"],
            config_hash=a["config_hash"],
            calls=a["config"]["calls"],
        )
        for a in node.agents.offered(models)
    ]


@router.get("/models/agent/{name}", response_model=ModelCard)
def show_agent(name: str, node: NodeDep, principal: Inferrer) -> ModelCard:
    a = node.agents.resolve(f"agent/{name}")
    return agent_card(
        show_model(a.model, node, principal),
        a.name,
        a.terms.owner,
        a.terms.id,
        runs=a.model,
        price=str(a.terms.price),
        config_hash=a.terms.config_hash,
        calls=list(a.config.calls),
    )


@router.get("/models/{model}", response_model=ModelCard)
def show_model(model: str, node: NodeDep, principal: Inferrer) -> ModelCard:
    serving = node.serving
    card = serving.model(model)
    return model_card(card, serving.status(model), serving.engine_info()["warning"])


# ---------------------------------------------------------------------------- completions


@router.post("/completions", response_model=PaidCompletion)
async def completions(
    body: CompletionRequest, request: Request, node: NodeDep, principal: Inferrer
) -> Any:
    """Text completions: one choice per prompt and ``n``, streamed as SSE with ``stream``;
    paid by the key's account (one receipt per choice)."""
    request.app.state.limits.paid_request(request, principal.key_id or principal.address)
    body.check_supported()
    agent = await _agent(node, body.model)
    if agent is not None and (agent.config.calls or agent.config.retrieval):
        what = "calls other models" if agent.config.calls else "retrieves from datanets"
        raise ValidationError(
            f"{agent.ref} {what}; it answers chat requests only.",
            field="model",
            value=body.model,
            fix="use POST /v1/chat/completions.",
        )
    body = body.with_defaults(agent.config) if agent else body
    model = agent.model if agent else body.model
    prompts = body.prompts()
    if agent is not None and agent.config.system_prompt:
        prompts = [f"{agent.config.system_prompt}\n\n{p}" for p in prompts]
    n = body.choices_per_prompt
    max_tokens = 16 if body.max_tokens is None else body.max_tokens
    params = [body.sampling(max_tokens, i) for i in range(len(prompts) * n)]
    head = {"id": new_id("cmpl"), "created": now(), "model": body.model}
    run = StreamBridge(asyncio.get_running_loop())
    terms = agent.terms if agent else None
    call = PaidCall(node.paid, principal.address, model, terms)

    def start() -> int:
        serving = node.serving
        serving.model(model)
        for p in prompts:  # from the length alone, before any of it is tokenised
            check_prompt_chars(serving.tokenizer(), serving.engine.max_ctx, len(p), "prompt")
        encoded = [serving.encode_prompt(p) for p in prompts]
        ids = [encoded[i // n] for i in range(len(params))]
        run.check(serving, ids, params)
        for i, p in enumerate(params):  # a prompt is billed on its first choice only
            asked = committed_request(
                "completions", head["id"], i, p, terms, prompt=prompts[i // n]
            )
            call.add(prompts[i // n], len(ids[i]) if i % n == 0 else 0, p.max_tokens, asked)
        call.start(lambda: run.submit(serving, model, ids, params))
        return sum(len(e) for e in encoded)

    prompt_tokens = await paid_run.start(start, run, call)
    if body.stream:
        return paid_run.stream(
            run,
            call,
            head,
            "text_completion",
            prompt_tokens,
            body.include_usage,
            on_text=lambda i, text: completion_chunk(head, i, text, None),
            on_end=lambda i, reason: completion_chunk(head, i, "", reason),
        )
    texts, reasons, paid = await paid_run.finish(run, call, request)
    choices = [
        CompletionChoice(index=i, text=text, finish_reason=reason)
        for i, (text, reason) in enumerate(zip(texts, reasons, strict=True))
    ]
    tokens = usage(prompt_tokens, run.completion_tokens)
    return PaidCompletion(**head, choices=choices, usage=tokens, **paid)


@router.post("/chat/completions", response_model=PaidChatCompletion)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, node: NodeDep, principal: Inferrer
) -> Any:
    """Chat completions over the model's chat template; streamed as SSE with ``stream``;
    paid by the key's account (one receipt per choice)."""
    request.app.state.limits.paid_request(request, principal.key_id or principal.address)
    body.check_supported()
    agent = await _agent(node, body.model)
    body = body.with_defaults(agent.config) if agent else body
    model = agent.model if agent else body.model
    n = body.choices_per_prompt
    caller_messages = [m.as_template_input() for m in body.messages]
    if agent is not None and agent.config.retrieval:  # its passages go into its prompt
        prepare = AgentRunner(node.agents, node.paid).prepare
        with fields_renamed({"max_tokens": body.max_tokens_field}):
            agent = await run_in_threadpool(
                prepare, agent, caller_messages, body.requested_max_tokens
            )
    messages = caller_messages
    if agent is not None and agent.system_prompt:
        messages = [{"role": "system", "content": agent.system_prompt}, *messages]
    runner = AgentRunner(node.agents, node.paid) if agent and agent.config.calls else None
    if runner is not None and agent is not None:  # one that calls others: its wallets first
        if n != 1:
            raise ValidationError(
                f"{agent.ref} calls other models, so it answers one choice at a time.",
                field="n",
                value=n,
                fix="ask for n=1.",
            )
        await run_in_threadpool(runner.check, agent)
    head = {"id": new_id("chatcmpl"), "created": now(), "model": body.model}
    run = StreamBridge(asyncio.get_running_loop())
    terms = agent.terms if agent else None
    call = PaidCall(node.paid, principal.address, model, terms)
    renames = {"prompt": "messages", "max_tokens": body.max_tokens_field}
    sizes = [0]  # the prompt's tokens (with what the callees said, for an agent that calls)

    def start() -> int:
        serving = node.serving
        serving.model(model)
        chars = sum(len(m["content"]) for m in messages)  # the template only adds to them
        check_prompt_chars(serving.tokenizer(), serving.engine.max_ctx, chars, "messages")
        ids = serving.encode_chat(messages)
        sizes[0] = len(ids)
        prompt = serving.chat_prompt_text(messages)
        max_tokens = body.requested_max_tokens
        if max_tokens is None:  # the rest of the context, as OpenAI does
            max_tokens = max(1, serving.engine.max_ctx - len(ids))
        # an agent that calls: the prompt held for is as long as the context allows (what
        # the callees say goes into it); it is charged for the tokens it turns out to have
        held = len(ids) if runner is None else max(serving.engine.max_ctx - max_tokens, len(ids))
        with fields_renamed(renames):
            params = [body.sampling(max_tokens, i) for i in range(n)]
            run.check(serving, [ids] * n, params)
            if runner is not None and agent is not None:
                runner.check_room(agent, caller_messages, max_tokens)
            for i, p in enumerate(params):
                asked = committed_request(
                    "chat.completions", head["id"], i, p, terms, messages=messages
                )
                call.add(prompt, held if i == 0 else 0, p.max_tokens, asked)

            def consult_and_submit() -> None:
                assert runner is not None and agent is not None
                final, final_ids, inner = runner.final_prompt(agent, caller_messages, max_tokens)
                call.retext(0, serving.chat_prompt_text(final), len(final_ids), inner)
                sizes[0] = len(final_ids)
                run.submit(serving, model, [final_ids], params)

            if runner is None:
                call.start(lambda: run.submit(serving, model, [ids] * n, params))
            else:
                call.start(consult_and_submit)
        return sizes[0]

    prompt_tokens = await paid_run.start(start, run, call)
    if body.stream:
        return paid_run.stream(
            run,
            call,
            head,
            "chat.completion.chunk",
            prompt_tokens,
            body.include_usage,
            first=[
                chat_chunk(head, i, {"role": "assistant", "content": ""}, None) for i in range(n)
            ],
            on_text=lambda i, text: chat_chunk(head, i, {"content": text}, None),
            on_end=lambda i, reason: chat_chunk(head, i, {}, reason),
        )
    texts, reasons, paid = await paid_run.finish(run, call, request)
    choices = [
        ChatChoice(index=i, message=AssistantMessage(content=text), finish_reason=reason)
        for i, (text, reason) in enumerate(zip(texts, reasons, strict=True))
    ]
    tokens = usage(prompt_tokens, run.completion_tokens)
    return PaidChatCompletion(**head, choices=choices, usage=tokens, **paid)


# ---------------------------------------------------------------------------- helpers


async def _agent(node: Any, model: str) -> AgentRun | None:
    """The agent a request's ``model`` names (``agent/NAME``), resolved and checked before
    anything is held (docs/agents.md); None for a model."""
    if not model.startswith("agent/"):
        return None
    return await run_in_threadpool(node.agents.resolve, model)
