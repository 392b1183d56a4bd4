"""Trajectories to and from verl's rows: the one place that knows both shapes.

Rollout side: :func:`trajectory_from_row` builds the :class:`Trajectory` of a dataset row (the
keyword arguments verl's worker passes to a loop's ``run``), :func:`row_settings` reads what the
row chooses for its trajectory (tool set, per-tool initial state, environment turns; verl's own
``tools_kwargs`` / ``tool_selection`` row fields map onto them), :func:`trajectory_key` names the
trajectory's sessions, and :func:`loop_output` returns it as
verl's ``AgentLoopOutput``, with ``trajectory.model_dump(mode="json")`` in
``extra_fields[TRAJECTORY_KEY]`` and its numbers in ``extra_fields[STATS_KEY]``.

Reward side: verl hands those extra fields to the reward loop as
``non_tensor_batch["tool_extra_fields"][i]`` (per-sample scoring) or as a column of their own
(batch scoring); :func:`trajectory_from_item` rebuilds the trajectory from them. Without them
(e.g. verl's single-turn loop) the response is decoded into a one-turn trajectory whose answer
is its last ``<answer>`` block. Either way the data row (``reward_model.ground_truth``,
``data_source``, ``extra_info``) fills whatever the trajectory lacks.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from rlfactory_plugins.verl import compat

compat.require(__name__)

from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput  # noqa: E402

from rlfactory_plugins.config.row import ROW_KEY, RowError, RowSettings, parse_row_settings  # noqa: E402
from rlfactory_plugins.rewards.answer import extract_tagged, plain  # noqa: E402
from rlfactory_plugins.trajectory import Trajectory, TurnRecord  # noqa: E402

TRAJECTORY_KEY = "rlfactory_trajectory"
STATS_KEY = "rlfactory_stats"
ANSWER_TAGS = ("<answer>", "</answer>")


# -- rollout side: row -> trajectory -> AgentLoopOutput ------------------------------------------
def trajectory_from_row(row: Mapping[str, Any]) -> Trajectory:
    """The trajectory a loop starts from: the row's prompt, ground truth, data source, extra info, step."""
    messages = plain(list(row["raw_prompt"]))
    reward_model = plain(row.get("reward_model") or {})
    return Trajectory(
        uid=str(row.get("uid", "")),
        prompt=messages,
        messages=list(messages),
        ground_truth=reward_model.get("ground_truth") if isinstance(reward_model, dict) else None,
        data_source=row.get("data_source"),
        extra_info=plain(row.get("extra_info") or {}),
        step=int(row["global_steps"]) if row.get("global_steps") is not None else None,
    )


def row_settings(row: Mapping[str, Any]) -> RowSettings:
    """What the row chooses for its trajectory: ``extra_info.rlfactory`` (see docs/rollout.md), with verl's
    row fields as fallbacks: ``extra_info.tool_selection`` -> ``tools``, ``tools_kwargs[name].create_kwargs``
    -> ``tool_kwargs[name]`` (verl puts ``tools_kwargs`` both in ``extra_info`` and as a column of its own).

    Raises :class:`RowError` for a misspelt key, and for ``extra_info.tool_env_name``, a field of verl's
    tool environments that verl 0.9 no longer has, saying how to write the row for rlfactory instead.
    """
    extra = plain(row.get("extra_info") or {})
    extra = extra if isinstance(extra, dict) else {}
    if extra.get("tool_env_name") is not None or row.get("tool_env_name") is not None:
        name = extra.get("tool_env_name") or row.get("tool_env_name")
        raise RowError(
            f"extra_info.tool_env_name={name!r} selects a group of verl's multi_turn.tool_envs, which verl 0.9 "
            f"and rlfactory do not have; list the group's tools in the row instead: "
            f"extra_info.{ROW_KEY}.tools: [tool_a, tool_b] (their initial state in extra_info.{ROW_KEY}.tool_kwargs: "
            "{tool_a: {...}}), with the tools in rlfactory.tools or rlfactory.mcp"
        )
    raw = extra.get(ROW_KEY)
    if raw is not None and not isinstance(raw, dict):
        return parse_row_settings(raw)  # raises, naming the field and the type
    # parquet gives every row every key of its struct columns, None where the row has none
    own = {k: v for k, v in (raw or {}).items() if v is not None}
    if isinstance(own.get("tool_kwargs"), dict):
        own["tool_kwargs"] = {k: v for k, v in own["tool_kwargs"].items() if v is not None}
    if own.get("tools") is None and extra.get("tool_selection") is not None:
        own["tools"] = extra["tool_selection"]
    verl_kwargs = _create_kwargs(extra.get("tools_kwargs"), row.get("tools_kwargs"))
    if verl_kwargs and isinstance(own.get("tool_kwargs", {}), dict):
        own["tool_kwargs"] = {**verl_kwargs, **own.get("tool_kwargs", {})}
    return parse_row_settings(own if own or raw is not None else None)


def _create_kwargs(*sources: Any) -> dict[str, dict[str, Any]]:
    """verl's ``tools_kwargs: {name: {create_kwargs: {...}, execute_kwargs: ...}}`` -> ``{name: create_kwargs}``."""
    out: dict[str, dict[str, Any]] = {}
    for source in sources:
        source = plain(source) if source is not None else None
        if not isinstance(source, dict):
            continue
        for name, entry in source.items():
            create = entry.get("create_kwargs") if isinstance(entry, dict) else None
            if isinstance(create, dict):
                out.setdefault(str(name), create)
    return out


def trajectory_key(row: Mapping[str, Any], request_id: str) -> str:
    """The trajectory's session key: ``uid/session_id`` when verl's V1 worker numbers the n samples of a
    prompt, else the loop's per-trajectory request id. Never the uid alone: GRPO siblings share it."""
    session_id = row.get("session_id")
    if session_id is not None and row.get("uid") is not None:
        return f"{row['uid']}/{session_id}"
    return request_id


def loop_output(
    trajectory: Trajectory, prompt_ids: list[int], tokens: Any, stats: dict[str, float], extra: dict[str, Any],
    output_cls: type[AgentLoopOutput] = AgentLoopOutput,
) -> AgentLoopOutput:
    """verl's ``AgentLoopOutput`` of a finished trajectory (``tokens``: the episode's ids, mask, logprobs);
    ``output_cls`` a subclass of it (:class:`~rlfactory_plugins.verl.turn_rewards.TurnRewardOutput`)."""
    observations = sum(1 for t in trajectory.turns if t.observation_tokens)
    return output_cls(
        prompt_ids=prompt_ids,
        response_ids=tokens.ids,
        response_mask=tokens.mask,
        response_logprobs=tokens.logprobs if tokens.want_logprobs else None,
        num_turns=1 + trajectory.num_turns + observations,
        metrics=AgentLoopMetrics(
            generate_sequences=stats["generate_s"], tool_calls=stats["tools_s"], num_preempted=extra["num_preempted"]
        ),
        extra_fields={
            TRAJECTORY_KEY: trajectory.model_dump(mode="json"),
            STATS_KEY: stats,
            "min_global_steps": extra.get("min_global_steps"),  # verl's V1 trainer reads the policy versions
            "max_global_steps": extra.get("max_global_steps"),
            "turn_scores": [],
            "tool_rewards": [],
        },
    )


# -- reward side: DataProtoItem -> trajectory ----------------------------------------------------
@functools.lru_cache(maxsize=8)
def _answer_decoder(tokenizer: Any) -> Any:
    """Decodes without special tokens but keeps ``<answer>`` tags a tokenizer flags special
    (a plain ``skip_special_tokens=True`` decode would delete them and every answer with them)."""
    from rlfactory_plugins.errors import ConfigError
    from rlfactory_plugins.rollout.codec import Codec
    from rlfactory_plugins.rollout.turn_text import TurnDecoder

    try:
        return TurnDecoder(Codec(tokenizer), ANSWER_TAGS, parser_name="reward-side answer").decode
    except ConfigError:  # the tags do not survive this tokenizer at all: nothing better than the plain decode
        return lambda ids: tokenizer.decode(ids, skip_special_tokens=True)


def _recorded(non_tensor: Mapping[str, Any]) -> Any:
    extra = non_tensor.get("tool_extra_fields")
    if isinstance(extra, dict) and extra.get(TRAJECTORY_KEY) is not None:
        return extra[TRAJECTORY_KEY]
    return non_tensor.get(TRAJECTORY_KEY)


def _decoded(item: Any, tokenizer: Any) -> Trajectory:
    response_ids = item.batch["responses"]
    length = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
    text = _answer_decoder(tokenizer)([int(i) for i in response_ids[:length]])
    prompt = [dict(m) for m in plain(item.non_tensor_batch.get("raw_prompt", []))]
    return Trajectory(
        prompt=prompt,
        messages=[*prompt, {"role": "assistant", "content": text}],
        response_text=text,
        final_answer=extract_tagged(text),
        turns=[TurnRecord(index=0, assistant_text=text, response_tokens=length)],
    )


def trajectory_from_item(item: Any, tokenizer: Any) -> Trajectory:
    """The trajectory of a ``DataProtoItem`` (``data[i]``), completed from its data row."""
    non_tensor = item.non_tensor_batch
    recorded = _recorded(non_tensor)
    if recorded is not None:
        trajectory = Trajectory.model_validate(json.loads(recorded) if isinstance(recorded, str) else recorded)
    else:
        trajectory = _decoded(item, tokenizer)
    _complete_from_row(trajectory, non_tensor)
    return trajectory


def _complete_from_row(trajectory: Trajectory, row: Mapping[str, Any]) -> None:
    """Fill the ground truth, data source and extra info the trajectory lacks from the data row."""
    reward_model = plain(row.get("reward_model")) or {}
    if trajectory.ground_truth is None and isinstance(reward_model, dict):
        trajectory.ground_truth = reward_model.get("ground_truth")
    if trajectory.data_source is None and row.get("data_source") is not None:
        trajectory.data_source = str(row["data_source"])
    if not trajectory.extra_info and isinstance(row.get("extra_info"), dict):
        trajectory.extra_info = plain(row["extra_info"])
