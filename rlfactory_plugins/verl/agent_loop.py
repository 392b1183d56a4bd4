"""The ``rlfactory_agent`` verl agent loop (``actor_rollout_ref.rollout.agent.default_agent_loop``).

verl's worker builds one object per trajectory, rlfactory's worker one per worker
(``shared_across_trajectories``); either way ``run`` keeps per-trajectory state in locals
and everything shared lives in :mod:`rlfactory_plugins.rollout.runtime`. ``run`` renders the prompt
(with the schemas of the row's tools when the parser wants them), runs the multi-turn
:class:`~rlfactory_plugins.rollout.episode.Episode` and returns verl's ``AgentLoopOutput``
built by :mod:`rlfactory_plugins.verl.rows` (read back by the ``rlfactory`` reward manager).

With a vision-language model (verl passes its ``processor``), the prompt's images (verl's
``process_multi_modal_info`` of the row's ``raw_prompt``) and the tool results' images are the
output's ``multi_modal_data["images"]``, in token order, which verl's training side runs through the
same processor (``pixel_values``, ``image_grid_thw``, M-RoPE position ids) to compute the log-probs.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import uuid4

from rlfactory_plugins.verl import compat

compat.require(__name__)

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register  # noqa: E402

from rlfactory_plugins.config.check import response_budget  # noqa: E402
from rlfactory_plugins.config.row import DEFAULT_ROW, RowError  # noqa: E402
from rlfactory_plugins.errors import ConfigError  # noqa: E402
from rlfactory_plugins.rollout.branching import Slot, check_row, prefix_digest  # noqa: E402
from rlfactory_plugins.rollout.episode import Episode  # noqa: E402
from rlfactory_plugins.rollout.observation import ImageFormat  # noqa: E402
from rlfactory_plugins.rollout.metrics import trajectory_stats  # noqa: E402
from rlfactory_plugins.rollout.runtime import BRANCHES, get_runtime  # noqa: E402
from rlfactory_plugins.verl.advantage_context import BRANCH_KEY  # noqa: E402
from rlfactory_plugins.verl.branch_setup import check_branching, validating  # noqa: E402
from rlfactory_plugins.rollout.tokens import ResponseTokens  # noqa: E402
from rlfactory_plugins.verl.rows import loop_output, row_settings, trajectory_from_row, trajectory_key  # noqa: E402
from rlfactory_plugins.verl.section import section_config  # noqa: E402
from rlfactory_plugins.verl.turn_rewards import TurnRewardOutput, wanted  # noqa: E402
# the module, not the name: importing verl_tools first imports verl, whose plugin entry point
# registers this agent loop while verl_tools is still half-initialised (check-config does that)
from rlfactory_plugins.verl import verl_tools  # noqa: E402

AGENT_LOOP_NAME = "rlfactory_agent"
logger = logging.getLogger("rlfactory")


@register(AGENT_LOOP_NAME)
class RLFactoryAgentLoop(AgentLoopBase):
    """Multi-turn tool-calling rollout driven by the ``rlfactory:`` config section."""

    #: ``run`` keeps its state in locals, so rlfactory's agent-loop worker builds one object per
    #: worker instead of one per trajectory (see :mod:`rlfactory_plugins.verl.shared_loops`)
    shared_across_trajectories = True

    def __init__(self, *args: Any, tools: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # verl's own tools, loaded once per worker from multi_turn.tool_config_path / function_tool_path,
        # join rlfactory's tool manager (BaseTool -> one instance per trajectory, @function_tool -> stateless)
        self.verl_tools = verl_tools.wrap_verl_tools(getattr(tools, "tools", None) or ())
        self.rlf_config = section_config(self.config.get("rlfactory"))
        self.response_length = int(self.rollout_config.response_length)
        self.budget = response_budget(self.rlf_config, self.response_length)  # the check check-config runs too
        # algorithm.adv_estimator=rlfactory_turn_grpo: the per-turn rewards ride in rm_scores (turn_rewards.py)
        self.output_cls = TurnRewardOutput if wanted(self.config) else AgentLoopOutput
        self.branching = self.rlf_config.rollout.branching
        if self.branching.enabled:
            check_branching(self.config, self.branching)
        self._image_format: ImageFormat | None = None

    async def _images(self) -> ImageFormat | None:
        """How tool images enter the token stream: through the model's processor (None: a text-only model)."""
        if self.processor is None or getattr(self.processor, "image_processor", None) is None:
            return None
        if self._image_format is None:
            if self.branching.enabled:
                raise ConfigError(
                    "rlfactory.rollout.branching.enabled=true with a vision-language model: branches do not carry "
                    "their parent's images yet; set rlfactory.rollout.branching.enabled=false"
                )
            self._image_format = await self.loop.run_in_executor(None, lambda: ImageFormat.from_processor(
                self.processor, mm_processor_kwargs=self.mm_processor_kwargs,
                chat_template_kwargs=self.apply_chat_template_kwargs))
        return self._image_format

    async def _prompt_images(self, raw_prompt: list[dict[str, Any]]) -> list[Any]:
        """The row's prompt images (verl's own extraction, the dataset class's ``process_vision_info``)."""
        if not any(isinstance(m.get("content"), list) for m in raw_prompt):
            return []
        data = await self.process_multi_modal_info(raw_prompt)
        if data.get("videos") or data.get("audios"):
            raise RowError("the row's prompt has videos or audio; rlfactory's rollout takes images only")
        return list(data.get("images") or [])

    async def _initial_prompt_ids(self, messages: list[dict[str, Any]], tools: Any, images: Any = None) -> list[int]:
        if images:  # the builder renders the image placeholders through the processor
            return await self.ct_build_initial_tokens(messages, tools=tools, images=images)
        if getattr(self, "continuous_token_builder", None) is not None:  # verl 0.9.1, or 0.9.0 with continuous_token
            return await self.ct_build_initial_tokens(messages, tools=tools)
        # verl 0.9.0 with data.continuous_token.enable=false (its default) builds no builder: render the
        # prompt as ContinuousTokenBuilder.build_initial_tokens does for text-only models
        from verl.utils.tokenizer import normalize_token_ids
        from verl.utils.tokenizer.chat_template import apply_chat_template

        ids = await self.loop.run_in_executor(None, lambda: normalize_token_ids(apply_chat_template(
            self.tokenizer, messages, tools=tools, add_generation_prompt=True, tokenize=True,
            **self.apply_chat_template_kwargs)))
        return self._cap_text_prompt_length(ids)

    def _branch_slot(self, kwargs: dict[str, Any]) -> Slot | None:
        """This session's place in its group's branching (synchronous: before the session's first await)."""
        if not self.branching.enabled or validating():
            return None
        session, uid = kwargs.get("session_id"), kwargs.get("uid")
        if session is None or uid is None:  # not verl's V1 worker: no group to coordinate (check_branching says so)
            return None
        return BRANCHES.enter(str(uid), int(session), self.branching)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        slot = self._branch_slot(kwargs)
        try:
            return await self._run(slot, sampling_params, **kwargs)
        finally:
            if slot is not None:
                slot.leave()

    async def _run(self, slot: Slot | None, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        rt = await get_runtime(self.rlf_config, self.tokenizer, self.apply_chat_template_kwargs, self.verl_tools)
        trajectory = trajectory_from_row(kwargs)
        request_id = uuid4().hex  # sticky across turns: the server can reuse its prefix cache
        trajectory.key = trajectory_key(kwargs, request_id)
        try:
            settings, row_error = row_settings(kwargs), None
        except RowError as e:  # this row only: its trajectory ends with the error, the batch goes on
            settings, row_error = DEFAULT_ROW, e
        if slot is not None and row_error is None:
            try:  # every session of the row fails alike, so no sibling waits for a fork that cannot come
                check_row(settings, [t.name for t in rt.stateful_for(settings.tools)])
            except RowError as e:
                row_error = e
        schemas = rt.schemas_for(settings.tools)
        image_format = await self._images()
        prompt_images: list[Any] = []
        messages = trajectory.prompt
        if image_format is not None and row_error is None:
            try:
                prompt_images = await self._prompt_images(list(kwargs["raw_prompt"]))
            except RowError as e:
                row_error = e
            if prompt_images:  # the processor renders the raw messages; the trajectory keeps JSON-able ones
                messages = list(kwargs["raw_prompt"])
                trajectory.prompt = [_without_images(m) for m in trajectory.prompt]
                trajectory.messages = list(trajectory.prompt)
        prompt_ids = await self._initial_prompt_ids(
            messages, tools=schemas if rt.parser.tools_in_prompt and schemas else None, images=prompt_images
        )
        extra: dict[str, Any] = {"num_preempted": -1}

        async def generate(ids: list[int], params: dict[str, Any], images: list[Any] | None = None) -> Any:
            if slot is not None:  # the entropy is read from every turn's log-probs (kept only if asked for)
                params = {**params, "logprobs": True}
            media = {"image_data": images} if images else {}
            out = await self.server_manager.generate(
                request_id=request_id, prompt_ids=ids, sampling_params=params, **media)
            if out.num_preempted is not None:
                extra["num_preempted"] = max(extra["num_preempted"], 0) + out.num_preempted
            return out

        if row_error is not None:
            logger.warning("rlfactory: trajectory %s not run: %s", trajectory.key, row_error)
            trajectory.stop_reason, trajectory.error = "error", f"{type(row_error).__name__}: {row_error}"
            tokens = ResponseTokens(want_logprobs=bool(sampling_params.get("logprobs")))
        else:
            fork = await slot.fork() if slot is not None else None
            episode = Episode(
                rt, generate, trajectory, prompt_ids, sampling_params, self.budget, settings, fork=fork,
                on_generated=slot.brancher(self.branching, fork).generated if slot is not None else None,
                image_format=image_format, prompt_images=prompt_images,
            )
            tokens = await episode.run()
        if trajectory.branch is not None:
            trajectory.branch.prefix_sha256 = prefix_digest(tokens.ids[: trajectory.branch.prefix])
        await rt.trajectory_finished(trajectory)
        # the weight versions the trajectory's turns ran on (each turn's span: Episode), read by verl's V1 and
        # fully-async trainers for their staleness metrics and off-policy bookkeeping
        extra["min_global_steps"], extra["max_global_steps"] = trajectory.min_global_steps, trajectory.max_global_steps
        output = loop_output(trajectory, prompt_ids, tokens, trajectory_stats(trajectory), extra, self.output_cls)
        if trajectory.branch is not None:  # read by rlfactory_branch_grpo (advantage_context)
            output.extra_fields[BRANCH_KEY] = {"parent": trajectory.branch.parent, "prefix": trajectory.branch.prefix}
        if prompt_images or tokens.images:  # what verl's training side feeds the processor, in token order
            output.multi_modal_data = {"images": [*prompt_images, *tokens.images]}
        return output


def _without_images(message: dict[str, Any]) -> dict[str, Any]:
    """A prompt message with its image objects left out of its content parts (the trajectory is JSON)."""
    content = message.get("content")
    if not isinstance(content, list):
        return message
    parts = [{k: v for k, v in p.items() if k != "image"} if isinstance(p, dict) else p for p in content]
    return {**message, "content": parts}
