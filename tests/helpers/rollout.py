"""Helpers for the rollout tests: test tools, scripted and real (transformers) server
managers, a factory for the ``rlfactory_agent`` verl agent loop, the trajectory and the loss-mask
spans of its output, and a stateful key-value tool that counts its sessions (the ``counts`` fixture)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import DictConfigWrap
from verl.workers.rollout.replica import TokenOutput

from rlfactory_plugins import hookimpl
from rlfactory_plugins.tools import SessionContext, StatefulTool, ToolCrashed, ToolSpec
from rlfactory_plugins.trajectory import Trajectory
from rlfactory_plugins.verl.agent_loop import RLFactoryAgentLoop

STEP = 3


class RolloutTestTools:
    """Tools registered for the rollout tests."""

    @hookimpl
    def register_tools(self, register):
        def add(a: int, b: int) -> int:
            "Add two integers."
            return a + b

        async def echo(text: str) -> str:
            "Repeat the text."
            return text

        async def slow(seconds: float) -> str:
            "Sleep, then answer."
            await asyncio.sleep(seconds)
            return "woke up"

        def search(query: str) -> str:
            "Search the corpus."
            return f"Doc about {query}."

        def big(n: int) -> str:
            "A long output."
            return "word " * n

        for fn in (add, echo, slow, search, big):
            register(fn)


@dataclass
class ScriptedServer:
    """A server manager answering each turn with the next scripted text (or ids).

    Logprobs are made up but distinct per position so alignment can be checked; the
    server ends each turn with ``<|im_end|>`` like a chat model (``eos=False`` to not).
    """

    tokenizer: Any
    turns: list[Any]
    delay: float = 0.0
    eos: bool = True
    fail_on: int | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[list[int]] = field(default_factory=list)

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kw):
        self.calls.append({"request_id": request_id, "prompt_ids": list(prompt_ids), "params": dict(sampling_params)})
        if self.delay:
            await asyncio.sleep(self.delay)
        n = len(self.calls) - 1
        if self.fail_on is not None and n == self.fail_on:
            raise ConnectionError("rollout server went away")
        script = self.turns[min(n, len(self.turns) - 1)]
        ids = list(script) if isinstance(script, list) else self.tokenizer.encode(script, add_special_tokens=False)
        if self.eos:
            ids.append(self.tokenizer.convert_tokens_to_ids("<|im_end|>"))
        ids = ids[: sampling_params["max_tokens"]]
        self.outputs.append(ids)
        logprobs = [-(len(self.calls) + i / 1000) for i in range(len(ids))] if sampling_params.get("logprobs") else None
        return TokenOutput(token_ids=ids, log_probs=logprobs, stop_reason="completed", extra_fields={"global_steps": STEP})


class HFServerManager:
    """A real in-process server manager: rlfactory's transformers rollout server
    (KV-cached sampling with log-probs) on the tiny model. ``forced`` turns are
    scripted ids scored by the same model (teacher forcing)."""

    def __init__(self, tiny_dir, tokenizer, forced: list[str] | None = None, response_length: int = 256):
        from rlfactory_plugins.verl.cpu.server import HFRolloutServer

        config = {"prompt_length": 1024, "response_length": response_length, "dtype": "float32", "seed": 0}
        self.server = HFRolloutServer(config, {"path": str(tiny_dir)})
        self.server.launch_server()
        self.tokenizer = tokenizer
        self.forced = list(forced or [])
        self.calls: list[list[int]] = []

    def score(self, ids: list[int], start: int) -> list[float]:
        """log p(ids[i] | ids[:i]) for i >= start."""
        with torch.inference_mode():
            logits = self.server.model(input_ids=torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        return [float(logp[i - 1, ids[i]]) for i in range(start, len(ids))]

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kw):
        self.calls.append(list(prompt_ids))
        if self.forced:
            ids = self.tokenizer.encode(self.forced.pop(0), add_special_tokens=False)
            ids = ids[: sampling_params["max_tokens"]]
            logprobs = self.score(list(prompt_ids) + ids, len(prompt_ids))
            return TokenOutput(token_ids=ids, log_probs=logprobs, stop_reason="completed", extra_fields={})
        return await self.server.generate(prompt_ids, sampling_params, request_id)


def make_agent_loop(server, tokenizer, section: dict[str, Any], *, response_length: int = 256) -> RLFactoryAgentLoop:
    config = OmegaConf.create(
        {
            "actor_rollout_ref": {"rollout": {"prompt_length": 1024, "response_length": response_length}},
            "data": {"continuous_token": {"enable": False}},
            "rlfactory": section,
        }
    )
    return RLFactoryAgentLoop(
        trainer_config=DictConfigWrap(config),
        server_manager=server,
        tokenizer=tokenizer,
        processor=None,
        dataset_cls=None,
        data_config=DictConfigWrap(config.data),
        hf_model_type="qwen2",
    )


async def run_loop(agent_loop, question: str = "What is 2 + 3?", logprobs: bool = True, **kwargs):
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": logprobs}
    row = {
        "raw_prompt": [{"role": "user", "content": question}],
        "reward_model": {"ground_truth": "5"},
        "data_source": "unit",
        "uid": "u1",
        **kwargs,
    }
    return await agent_loop.run(params, **row)


def section(parser: str = "hermes", slow_timeout: float = 0.3, **rollout: Any) -> dict[str, Any]:
    tools = ["add", "echo", "search", "big", {"name": "slow", "timeout": slow_timeout}]
    return {"tools": tools, "parser": parser, "rollout": rollout, "tool_manager": {"retries": 0}}


def traj_of(output) -> Trajectory:
    """The rlfactory trajectory an agent-loop output carries."""
    return Trajectory.model_validate(output.extra_fields["rlfactory_trajectory"])


def spans(mask: list[int], value: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` runs of ``value`` in a response mask."""
    out, start = [], None
    for i, m in enumerate([*mask, 1 - value]):
        if m == value and start is None:
            start = i
        elif m != value and start is not None:
            out.append((start, i))
            start = None
    return out


KV_PARAMS = {
    "type": "object",
    "properties": {"key": {"type": "string"}, "value": {"type": "integer"}},
    "required": ["key"],
}


class SessionCounts:
    """Opens (keys), closes (key, reason) and session contexts of every CountingKV sharing it."""

    def __init__(self) -> None:
        self.opens: list[str] = []
        self.closes: list[tuple[str, str]] = []
        self.contexts: list[SessionContext] = []

    def balanced(self) -> bool:
        return sorted(self.opens) == sorted(k for k, _ in self.closes)


class CountingKV(StatefulTool):
    """A per-trajectory store seeded from ``ctx.kwargs["initial"]``. ``value`` set: set, else get.
    Key ``hang`` never returns, ``crash`` raises ToolCrashed, ``boom`` raises a plain bug."""

    def __init__(self, counts: SessionCounts, name: str = "kv") -> None:
        super().__init__(ToolSpec(name=name, description="a per-trajectory key-value store", parameters=KV_PARAMS))
        self.counts = counts

    async def open_session(self, ctx: SessionContext) -> dict[str, Any]:
        self.counts.opens.append(ctx.key)
        self.counts.contexts.append(ctx)
        return {"_key": ctx.key, **dict(ctx.kwargs.get("initial", {}))}

    async def acall_in(self, session: dict[str, Any], arguments: dict[str, Any]) -> Any:
        key = arguments["key"]
        if key == "hang":
            await asyncio.Event().wait()
        if key == "crash":
            raise ToolCrashed("the store died")
        if key == "boom":
            raise RuntimeError("a bug in the store")
        await asyncio.sleep(0)
        if arguments.get("value") is not None:
            session[key] = arguments["value"]
            return {"set": key}
        return {"key": key, "value": session.get(key)}

    async def session_state(self, session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if k != "_key"}

    async def close_session(self, session: dict[str, Any], reason: str) -> None:
        self.counts.closes.append((session["_key"], reason))


class CountingKVPlugin:
    def __init__(self, counts: SessionCounts) -> None:
        self.counts = counts

    @hookimpl
    def register_tools(self, register):
        register(CountingKV(self.counts))


def kv_section(**rollout: Any) -> dict[str, Any]:
    """:func:`section` with the stateful ``kv`` tool added."""
    cfg = section(**rollout)
    cfg["tools"] = [*cfg["tools"], {"name": "kv", "timeout": 60}]
    return cfg


def call(key: str, value: int | None = None, name: str = "kv") -> str:
    """A hermes tool call of the ``kv`` tool: get ``key``, or set it to ``value``."""
    args = f'{{"key": "{key}"}}' if value is None else f'{{"key": "{key}", "value": {value}}}'
    return f'<tool_call>{{"name": "{name}", "arguments": {args}}}</tool_call>'
