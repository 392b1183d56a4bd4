"""One trajectory's multi-turn loop: generate → parse → invoke → update.

Independent of verl: the caller passes a ``generate(prompt_ids, sampling_params)``
coroutine returning an object with ``token_ids``, ``log_probs``, ``stop_reason`` and
``extra_fields`` (verl's ``TokenOutput``). The model's tokens are kept exactly as
generated (mask 1); observation tokens are appended with mask 0 and logprob 0.0.
Every way a trajectory can end sets ``trajectory.stop_reason``; an exception ends
only this trajectory (``stop_reason="error"``), never the batch.

Per row (:class:`~rlfactory_plugins.config.row.RowSettings`): the trajectory sees only the row's
tools, its stateful tools get sessions of their own (keyed on ``trajectory.key``), and an
environment may answer a turn without a tool call with a user message (mask 0, the chat
template's user role). The sessions and the environment are closed in :meth:`Episode.run`'s
``finally``, shielded, for every ending: their final states land on the trajectory
(``tool_state``, ``env_state``) before hooks and rewards see it.

Vision-language models (``image_format``, from the model's processor): a tool result's images are
written as the processor's image tokens (``ToolResult.parts()``, mask 0) and kept, in order after the
prompt's images, in ``ResponseTokens.images``; every later generation gets them all (``generate``'s
``images`` keyword). Without an ``image_format`` the model reads each image as ``[image WxH fmt]``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rlfactory_plugins.config.row import DEFAULT_ROW, RowSettings
from rlfactory_plugins.environments.base import Environment
from rlfactory_plugins.rollout.observation import ImageFormat
from rlfactory_plugins.rollout.parsers import ParsedCall, ParseResult
from rlfactory_plugins.rollout.runtime import Runtime
from rlfactory_plugins.rollout.tokens import ResponseTokens, RolloutError
from rlfactory_plugins.rollout.turn_reader import reader_of
from rlfactory_plugins.tools.images import to_pil
from rlfactory_plugins.tools.manager import ToolManager
from rlfactory_plugins.tools.session import SessionContext, StatefulTool, TrajectorySessions
from rlfactory_plugins.trajectory import StopReason, ToolCallRecord, Trajectory, TurnRecord

#: below these sizes tokenizer work runs inline on the event loop (see Episode._offload)
_INLINE_TOKENS = 2048
_INLINE_CHARS = 32_000

logger = logging.getLogger("rlfactory")

if TYPE_CHECKING:
    from rlfactory_plugins.rollout.branching import Fork

#: ``generate(prompt_ids, sampling_params)``; with images so far (a vision-language model) also ``images=[...]``
Generate = Callable[..., Awaitable[Any]]
#: called after each generation, before the turn is recorded: (episode, turn index, the server's log-probs)
OnGenerated = Callable[["Episode", int, "list[float] | None"], None]


class _Stop(Exception):
    """Internal: the trajectory ends with ``reason``."""

    def __init__(self, reason: StopReason) -> None:
        self.reason: StopReason = reason


def _over_limit_text(limit: int) -> str:
    return f"[over_limit] only {limit} tool calls run per turn (rollout.max_calls_per_turn); this call was skipped"


def weight_versions(out: Any) -> tuple[int | None, int | None]:
    """The weight versions (trainer ``global_steps``) a generation ran on, first and last: verl's
    fully-async client reports a request resumed after a weight sync as ``min/max_global_steps``, the
    others report ``global_steps`` only."""
    fields = out.extra_fields if isinstance(getattr(out, "extra_fields", None), dict) else {}
    last = fields.get("global_steps")
    return fields.get("min_global_steps", last), fields.get("max_global_steps", last)


class Episode:
    def __init__(
        self,
        runtime: Runtime,
        generate: Generate,
        trajectory: Trajectory,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        budget: int,
        settings: RowSettings = DEFAULT_ROW,
        *,
        fork: Fork | None = None,
        on_generated: OnGenerated | None = None,
        image_format: ImageFormat | None = None,
        prompt_images: list[Any] | None = None,
    ) -> None:
        self.rt = runtime
        self.cfg = runtime.config.rollout
        self.reader = reader_of(runtime)  # the first one checks the parser's tags against the tokenizer
        self.generate = generate
        self.trajectory = trajectory
        self.prompt_ids = list(prompt_ids)
        self.budget = budget
        want_logprobs = bool(sampling_params.get("logprobs"))
        # a branch (rlfactory.rollout.branching) starts from its parent's state after a tool result
        self.tokens = fork.tokens(want_logprobs) if fork is not None else ResponseTokens(want_logprobs=want_logprobs)
        self.start_turn = fork.turn if fork is not None else 0
        self.on_generated = on_generated
        self.image_format = image_format
        self.prompt_images = list(prompt_images or [])
        params = dict(sampling_params)
        stops = tuple(runtime.parser.stop)
        if stops:
            params["stop"] = list(dict.fromkeys([*(params.get("stop") or []), *stops]))
        self.sampling_params = params  # the same sampling for every turn
        self.loop = asyncio.get_running_loop()
        self.settings = settings
        #: the tools the trajectory may call now: the row's set, grown by environment turns (None: all)
        self.allowed: frozenset[str] | None = settings.tools
        self.sessions: TrajectorySessions | None = None
        #: the key of a stateless row's image budget (rlfactory.tool_manager.images.*_per_trajectory): sessions
        #: never opened nor registered, since the row has no stateful tool (an environment adding one opens real ones)
        self._image_scope: TrajectorySessions | None = None
        self.env: Environment | None = None
        self._env_state: Any = None
        self._closing: asyncio.Task[None] | None = None
        if not trajectory.key:  # callers without a key of their own (tests, tools): one per episode
            trajectory.key = f"episode-{uuid.uuid4().hex}"
        if settings.tools is not None:
            trajectory.tools = sorted(settings.tools)
        if fork is not None:
            fork.seed(trajectory)
            self.allowed = fork.allowed

    async def run(self) -> ResponseTokens:
        traj = self.trajectory
        timeout = self.cfg.trajectory_timeout_s
        deadline = None if timeout is None else self.loop.time() + timeout
        scope = asyncio.timeout_at(deadline)
        stragglers, step = self.rt.stragglers, traj.step  # step may be filled in later from the server
        try:
            async with scope:
                stragglers.enter(step, scope)
                self.rt.running[traj.key] = self.close
                await self._start()
                for index in range(self.start_turn, self.cfg.max_turns):
                    await self._turn(index)
                raise _Stop("max_turns")  # pragma: no cover - _turn ends the last turn itself
        except _Stop as stop:
            traj.stop_reason = stop.reason
        except TimeoutError as e:
            if scope.expired():
                traj.stop_reason = "deadline"
                if (cut := stragglers.cut_reason(scope)) is not None:
                    why = cut
                elif stragglers.enabled and stragglers.cut_by_policy(scope, deadline):
                    why = (
                        f"straggler policy: {self.cfg.straggler_fraction:.0%} of this step's trajectories had "
                        f"finished and straggler_grace_s={self.cfg.straggler_grace_s} was spent"
                    )
                else:
                    why = f"trajectory_timeout_s={timeout} spent"
                traj.error = f"{why}; kept {len(self.tokens)} response tokens"
            else:
                self._fail(e)
        except Exception as e:
            self._fail(e)
        finally:
            stragglers.leave(step, scope)
            # outside the scope, so a deadline or cut that already fired cannot cancel the close;
            # shielded, so a cancelled trajectory still closes (in the background) and re-raises
            try:
                await asyncio.shield(self.close(traj.stop_reason or "cancelled"))
            except Exception as e:  # a close bug must not turn one trajectory's ending into the batch's
                logger.warning("rlfactory: closing trajectory %s failed: %s: %s", traj.key, type(e).__name__, e)
                traj.close_errors["episode"] = f"{type(e).__name__}: {e}"
        traj.response_text = self.rt.codec.decode(self.tokens.ids, skip_special_tokens=False)
        return self.tokens

    # -- start and end: the row's tool set, sessions, environment ------------------------
    async def _start(self) -> None:
        traj, settings = self.trajectory, self.settings
        self.rt.check_tools(settings.tools)
        stateful = self.rt.stateful_for(settings.tools)
        if stateful:  # only then: trajectories of stateless tools run exactly as before
            self.sessions = self.rt.sessions.open(traj.key, self._session_context)
            if settings.open_sessions == "eager":
                await self.sessions.open_now(stateful)
        if settings.environment is not None:
            env = self.rt.environment(settings.environment.name)
            ctx = SessionContext(
                key=traj.key, uid=traj.uid, kwargs=dict(settings.environment.kwargs), extra_info=traj.extra_info
            )
            self._env_state = await env.reset(ctx)
            self.env = env  # only a reset environment is closed
            self.rt.user_format  # noqa: B018 - a template without a user role fails here, not mid-trajectory

    def _session_context(self, tool: StatefulTool) -> SessionContext:
        traj = self.trajectory
        kwargs = self.settings.kwargs_for(tool.session_group, tool.name)
        return SessionContext(key=traj.key, uid=traj.uid, kwargs=kwargs, extra_info=traj.extra_info)

    def close(self, reason: str) -> asyncio.Task[None]:
        """Close the trajectory's sessions and environment once, exporting their final states
        (``Trajectory.tool_state``, ``env_state``, ``close_errors``). Idempotent: the running
        close is returned to later callers (the shutdown sweep, the episode's own ``finally``)."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(reason))
        return self._closing

    async def _close(self, reason: str) -> None:
        traj = self.trajectory
        try:
            if self.sessions is not None:
                traj.tool_state = await self.sessions.aclose(reason)
                traj.close_errors.update(self.sessions.close_errors)
            if self.env is not None:
                await self._close_env(reason)
        finally:
            self.rt.running.pop(traj.key, None)

    async def _close_env(self, reason: str) -> None:
        env, traj = self.env, self.trajectory
        assert env is not None
        timeout = self.rt.sessions.close_timeout
        try:
            traj.env_state = await asyncio.wait_for(env.final_state(self._env_state), timeout)
        except Exception as e:
            traj.close_errors[f"environment:{env.name}"] = f"final_state failed: {type(e).__name__}: {e}"
        try:
            await asyncio.wait_for(env.close(self._env_state, reason), timeout)
        except Exception as e:
            why = f"close failed: {type(e).__name__}: {e}"
            key = f"environment:{env.name}"
            traj.close_errors[key] = f"{traj.close_errors[key]}; {why}" if key in traj.close_errors else why
            logger.warning("rlfactory: trajectory %s: environment %r %s", traj.key, env.name, why)

    def _fail(self, e: BaseException) -> None:
        logger.warning("rlfactory: trajectory %s ended with an error: %s: %s", self.trajectory.uid, type(e).__name__, e)
        self.trajectory.stop_reason = "error"
        self.trajectory.error = f"{type(e).__name__}: {e}"

    # -- one turn ------------------------------------------------------------------
    async def _turn(self, index: int) -> None:
        remaining = self.budget - len(self.tokens)
        if remaining <= 0:
            raise _Stop("max_length")
        params = {**self.sampling_params, "max_tokens": remaining}
        start = time.perf_counter()
        images = self.prompt_images + self.tokens.images
        if images:
            out = await self.generate(self.prompt_ids + self.tokens.ids, params, images=images)
        else:
            out = await self.generate(self.prompt_ids + self.tokens.ids, params)
        generate_s = time.perf_counter() - start
        if out.stop_reason == "aborted":
            raise RolloutError("the rollout server aborted the generation")
        first, last = weight_versions(out)
        if self.trajectory.step is None:
            self.trajectory.step = first
        if self.on_generated is not None:  # before anything of this turn is recorded: a fork copies the state so far
            self.on_generated(self, index, out.log_probs)
        raw_ids = [int(t) for t in out.token_ids][:remaining]
        ids, text, parsed = await self._offload(len(raw_ids) > _INLINE_TOKENS, self._decode_and_parse, raw_ids)
        logprobs = list(out.log_probs)[: len(ids)] if out.log_probs is not None else None

        self.tokens.add_generated(ids, logprobs)
        turn = TurnRecord(index=index, assistant_text=text, response_tokens=len(ids), generate_s=generate_s,
                          min_global_steps=first, max_global_steps=last)
        turn.tool_calls = [self._record(index, c) for c in parsed.calls]
        self.trajectory.turns.append(turn)
        self.trajectory.messages.append({"role": "assistant", "content": text})
        try:
            if self._check_end(index, parsed, hit_length=len(raw_ids) >= remaining and len(ids) == len(raw_ids)):
                await self._env_turn(index, turn, parsed)
            else:
                await self._invoke(turn)
        finally:
            self.rt.turn_finished(self.trajectory, turn)

    async def _offload(self, heavy: bool, fn: Any, *args: Any) -> Any:
        """Run tokenizer work in the executor when it is large; inline when small, since an
        executor hop (~0.1-0.2 ms with thousands of trajectories in flight) costs more than
        decoding a short turn or tokenizing a short observation."""
        if heavy:
            return await self.loop.run_in_executor(None, fn, *args)
        return fn(*args)

    def _decode_and_parse(self, ids: list[int]) -> tuple[list[int], str, ParseResult]:
        return self.reader.read(ids)

    @staticmethod
    def _record(index: int, call: ParsedCall) -> ToolCallRecord:
        # a (third-party) parser may return a call with neither name nor error: it names no tool to run
        error = call.error if call.error is not None or call.name else 'a tool call needs a "name" string'
        return ToolCallRecord(
            turn=index, name=call.name, arguments=call.arguments, raw=call.raw, parse_error=error,
            repaired=call.repaired,
        )

    def _check_end(self, index: int, parsed: ParseResult, hit_length: bool) -> bool:
        """Raise :class:`_Stop` when the turn ends the trajectory; True when the environment speaks next."""
        if parsed.final_answer is not None:
            self.trajectory.final_answer = parsed.final_answer
            if self.env is None or parsed.calls or hit_length:  # with an environment it may ask for more
                raise _Stop("answer")
        if hit_length:
            raise _Stop("max_length")
        if not parsed.calls:
            if self.env is None:
                raise _Stop("no_call")
            return True
        if index + 1 >= self.cfg.max_turns:
            raise _Stop("max_turns")
        return False

    async def _env_turn(self, index: int, turn: TurnRecord, parsed: ParseResult) -> None:
        """The environment's reply to a turn without a tool call, appended as a user message (mask 0)."""
        assert self.env is not None
        reply = await self.env.step(self._env_state, self.trajectory, turn)
        answered = parsed.final_answer is not None
        if reply.done:
            raise _Stop("answer" if answered else "env_done")
        if reply.message is None:
            raise _Stop("answer" if answered else "no_call")
        if self.trajectory.user_turns >= self.cfg.max_user_turns:
            raise _Stop("max_user_turns")
        if index + 1 >= self.cfg.max_turns:
            raise _Stop("max_turns")  # the model would have no turn left to answer it
        added = frozenset(reply.add_tools)
        if added:
            self.rt.check_tools(added)  # an environment naming a tool the worker lacks is a bug: this trajectory errs
        text = str(reply.message)
        ids, truncated = await self._offload(
            len(text) > _INLINE_CHARS, self.rt.user_format.render, self.rt.codec, self.tokens.ids, [text],
            self.cfg.max_observation_tokens,
        )
        if len(ids) + 1 > self.budget - len(self.tokens):
            raise _Stop("max_length")  # the message and one more token do not fit: end here, uncut
        self.tokens.add_observation(ids)
        turn.observation_tokens, turn.observation_truncated = len(ids), truncated
        turn.env_message = text
        if added and self.allowed is not None:
            turn.tools_added = sorted(added - self.allowed)
            self.allowed = self.allowed | added
            self.trajectory.tools = sorted(self.allowed)
            if self.sessions is None and self.rt.stateful_for(added):
                self.sessions = self.rt.sessions.open(self.trajectory.key, self._session_context)
        self.trajectory.user_turns += 1
        self.trajectory.messages.append({"role": "user", "content": text})

    async def _invoke(self, turn: TurnRecord) -> None:
        """Run the turn's calls concurrently and append their observation."""
        runnable = [c for c in turn.tool_calls if c.parse_error is None]
        for call in runnable[self.cfg.max_calls_per_turn :]:
            call.over_limit = True
        runnable = runnable[: self.cfg.max_calls_per_turn]
        start = time.perf_counter()
        # every runnable call has a name (_record); `or ""` only tells the type checker
        calls = [(c.name or "", c.arguments) for c in runnable]
        routing: dict[str, Any] = {}  # only what applies: a plain ToolRunner runs stateless rows unchanged
        if self.sessions is not None:
            routing["sessions"] = self.sessions
        elif isinstance(self.rt.tool_manager, ToolManager):  # a stateless row's images count per trajectory too
            if self._image_scope is None:
                self._image_scope = TrajectorySessions(self.trajectory.key, self._session_context, self.rt.sessions)
            routing["sessions"] = self._image_scope
        if self.allowed is not None:
            routing["allowed"] = self.allowed
        results = await self.rt.tool_manager.call_many(calls, **routing)
        turn.tools_s = time.perf_counter() - start
        for call, result in zip(runnable, results, strict=True):
            call.result = result
        contents = [self._observation_text(c) for c in turn.tool_calls]
        images: list[Any] = []
        if self.image_format is not None and any(c.result is not None and c.result.images for c in turn.tool_calls):
            obs_ids, truncated, images = await self.loop.run_in_executor(None, self._render_parts, turn.tool_calls)
        else:
            obs_ids, truncated = await self._offload(
                sum(map(len, contents)) > _INLINE_CHARS, self.rt.observation.render, self.rt.codec, self.tokens.ids,
                contents, self.cfg.max_observation_tokens,
            )
        if len(obs_ids) + 1 > self.budget - len(self.tokens):
            raise _Stop("max_length")  # the observation and one more token do not fit: end here, uncut
        self.tokens.add_observation(obs_ids, images)
        turn.observation_tokens, turn.observation_truncated = len(obs_ids), truncated
        for call, content in zip(turn.tool_calls, contents, strict=True):
            self.trajectory.messages.append({"role": "tool", "name": call.name or "", "content": content})

    def _render_parts(self, calls: list[ToolCallRecord]) -> tuple[list[int], bool, list[Any]]:
        """The observation of a turn whose results carry images, through the processor (in the executor)."""
        assert self.image_format is not None
        contents = [
            [p if isinstance(p, str) else to_pil(p).convert("RGB") for p in c.result.parts()]
            if c.result is not None and c.parse_error is None and not c.over_limit else [self._observation_text(c)]
            for c in calls
        ]
        return self.rt.observation.render_parts(
            self.rt.codec, self.tokens.ids, contents, self.cfg.max_observation_tokens, self.image_format
        )

    def _observation_text(self, call: ToolCallRecord) -> str:
        if call.parse_error is not None:
            return f"[parse_error] {call.parse_error}"
        if call.over_limit:
            return _over_limit_text(self.cfg.max_calls_per_turn)
        assert call.result is not None
        return call.result.render()
