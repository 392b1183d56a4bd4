"""How observations are written back into the token stream, pre-tokenized once.

An :class:`ObservationFormat` holds four token-id pieces, computed once per parser
and tokenizer (never per turn):

* ``turn_close`` — what ends the assistant turn (``<|im_end|>\\n`` for ChatML); the
  part the model did not generate itself is added,
* ``first``, ``between``, ``last`` — what goes before the first observation, between
  two observations and after the last one (the latter including the next assistant
  header).

For chat-template parsers the pieces are derived from the template by rendering a
conversation with sentinel contents and cutting the text at the sentinels, so the
rollout never re-renders the conversation. :meth:`ObservationFormat.user_from_chat_template`
derives the same pieces for a ``user`` message after a plain assistant turn: how an
environment's turn (a scripted or simulated user) is written back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.rollout.codec import Codec

TRUNCATION_MARKER = "...[truncated]"
_SENTINELS = ("@@RLF_OBS_A@@", "@@RLF_OBS_B@@", "@@RLF_OBS_C@@")
_ASSISTANT_SENTINEL = "@@RLF_ASSISTANT@@"
_USER_SENTINEL = "@@RLF_USER@@"


def _encode(tokenizer: Any, text: str) -> tuple[int, ...]:
    return tuple(tokenizer.encode(text, add_special_tokens=False)) if text else ()


def _render(tokenizer: Any, messages: list[dict[str, Any]], generation_prompt: bool, kwargs: dict[str, Any]) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt, **kwargs)
    if not isinstance(text, str):
        raise ConfigError(f"tokenizer.apply_chat_template(tokenize=False) returned {type(text).__name__}, not text")
    return text


@dataclass(frozen=True)
class ObservationFormat:
    turn_close: tuple[int, ...]
    first: tuple[int, ...]
    between: tuple[int, ...]
    last: tuple[int, ...]
    marker: tuple[int, ...]

    @classmethod
    def from_text(cls, tokenizer: Any, *, first: str, between: str, last: str, turn_close: str = "") -> ObservationFormat:
        return cls(
            turn_close=_encode(tokenizer, turn_close),
            first=_encode(tokenizer, first),
            between=_encode(tokenizer, between),
            last=_encode(tokenizer, last),
            marker=_encode(tokenizer, TRUNCATION_MARKER),
        )

    @classmethod
    def from_chat_template(
        cls, tokenizer: Any, role: str = "tool", chat_template_kwargs: dict[str, Any] | None = None
    ) -> ObservationFormat:
        kwargs = dict(chat_template_kwargs or {})
        head = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
        calls = [
            {"id": f"call_{i}", "type": "function", "function": {"name": "f", "arguments": {}}}
            for i in range(len(_SENTINELS))
        ]
        try:
            plain = _render(tokenizer, [*head, {"role": "assistant", "content": _ASSISTANT_SENTINEL}], False, kwargs)
            with_calls = [*head, {"role": "assistant", "content": "", "tool_calls": calls}]
            prefix = _render(tokenizer, with_calls, False, kwargs)
            tools = [{"role": role, "name": "f", "tool_call_id": c["id"], "content": s} for c, s in zip(calls, _SENTINELS)]
            full = _render(tokenizer, with_calls + tools, True, kwargs)
        except ConfigError:
            raise
        except Exception as e:
            raise ConfigError(
                f"the tokenizer's chat template cannot render {role!r} messages ({type(e).__name__}: {e}); "
                "set actor_rollout_ref.model.custom_chat_template or use a raw-text parser such as "
                "rlfactory.parser=search_r1"
            ) from None
        if _ASSISTANT_SENTINEL not in plain or not full.startswith(prefix):
            raise ConfigError(
                "the chat template does not render conversations append-only (rendering a tool message changed the "
                "text before it); rlfactory needs an append-only template for token-in/token-out rollouts"
            )
        turn_close = plain.split(_ASSISTANT_SENTINEL, 1)[1]
        delta = full[len(prefix) :]
        pieces = [delta]
        for sentinel in _SENTINELS:
            head_part, _, rest = pieces.pop().partition(sentinel)
            pieces += [head_part, rest]
        first, between, between_again, last = pieces
        if between != between_again or not last:
            raise ConfigError(
                f"the chat template wraps consecutive {role!r} messages inconsistently ({delta!r}); "
                "write a parser subclass with its own observation_format()"
            )
        return cls.from_text(tokenizer, first=first, between=between, last=last, turn_close=turn_close)

    @classmethod
    def user_from_chat_template(
        cls, tokenizer: Any, chat_template_kwargs: dict[str, Any] | None = None
    ) -> ObservationFormat:
        """The chat template's ``user`` turn after an assistant turn without tool calls (one content only):
        ``turn_close`` + ``<|im_start|>user\\n`` … ``<|im_end|>\\n<|im_start|>assistant\\n`` for ChatML."""
        kwargs = dict(chat_template_kwargs or {})
        head = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
        assistant = {"role": "assistant", "content": _ASSISTANT_SENTINEL}
        try:
            prefix = _render(tokenizer, [*head, assistant], False, kwargs)
            full = _render(tokenizer, [*head, assistant, {"role": "user", "content": _USER_SENTINEL}], True, kwargs)
        except ConfigError:
            raise
        except Exception as e:
            raise ConfigError(
                f"the tokenizer's chat template cannot render a user turn after an assistant turn "
                f"({type(e).__name__}: {e}); environment turns (extra_info.rlfactory.user_turns / environment) "
                "need a template that can, e.g. set actor_rollout_ref.model.custom_chat_template"
            ) from None
        if _ASSISTANT_SENTINEL not in prefix or not full.startswith(prefix) or _USER_SENTINEL not in full[len(prefix):]:
            raise ConfigError(
                "the chat template does not render conversations append-only (adding a user turn changed the text "
                "before it); environment turns need an append-only template for token-in/token-out rollouts"
            )
        turn_close = prefix.split(_ASSISTANT_SENTINEL, 1)[1]
        first, _, last = full[len(prefix) :].partition(_USER_SENTINEL)
        return cls.from_text(tokenizer, first=first, between="", last=last, turn_close=turn_close)

    def closing_ids(self, response_ids: list[int]) -> list[int]:
        """The part of ``turn_close`` the model did not generate itself."""
        close = self.turn_close
        for k in range(min(len(close), len(response_ids)), 0, -1):
            if tuple(response_ids[-k:]) == close[:k]:
                return list(close[k:])
        return list(close)

    def content_ids(self, codec: Codec, text: str, max_tokens: int) -> tuple[list[int], bool]:
        """Token ids of one observation, cut to ``max_tokens`` plus a visible marker."""
        ids = codec.encode(text)
        if len(ids) <= max_tokens:
            return ids, False
        return ids[:max_tokens] + list(self.marker), True

    def render(
        self, codec: Codec, response_ids: list[int], contents: list[str], max_tokens: int
    ) -> tuple[list[int], bool]:
        """Tokens appended after an assistant turn: close + wrapped observations (each cut to ``max_tokens``
        plus a visible marker) + next header."""
        out, truncated, _ = self.render_parts(codec, response_ids, [[text] for text in contents], max_tokens)
        return out, truncated

    def render_parts(
        self, codec: Codec, response_ids: list[int], contents: list[list[Any]], max_tokens: int,
        images: ImageFormat | None = None,
    ) -> tuple[list[int], bool, list[Any]]:
        """:meth:`render` with images (a vision-language model): each content is text and PIL images in order
        (``ToolResult.parts()``), each image written as ``images`` expands it. ``max_tokens`` counts the
        image tokens too and cuts whole images only. Returns the ids, whether a content was cut and the
        images kept, in the order of their tokens."""
        out = self.closing_ids(response_ids) + list(self.first)
        truncated, kept = False, []
        for i, parts in enumerate(contents):
            if i:
                out += self.between
            left = max_tokens
            for part in parts:
                if isinstance(part, str):  # text is cut at the limit
                    ids, cut = self.content_ids(codec, part, left)
                else:  # an image that does not fit is left out whole
                    ids = images.image_ids(part)
                    cut = len(ids) > left
                    ids = list(self.marker) if cut else ids
                out += ids
                if cut:
                    truncated = True
                    break
                left -= len(ids)
                if not isinstance(part, str):
                    kept.append(part)
        out += self.last
        return out, truncated, kept


_IMAGE_SENTINELS = ("@@RLF_IMG_A@@", "@@RLF_IMG_B@@")


@dataclass(frozen=True)
class ImageFormat:
    """How a vision-language processor writes one image into the token stream: the chat template's text
    for an image part (``<|vision_start|><|image_pad|><|vision_end|>`` for Qwen2-VL), which the processor
    expands to the image's tokens (the pad repeated grid_t·grid_h·grid_w / merge² times). The count comes
    from the same processor, with the same ``mm_processor_kwargs``, that verl's training side runs on the
    trajectory's ``multi_modal_data``, so rollout and training see the same tokens."""

    processor: Any
    placeholder: str
    processor_kwargs: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_processor(
        cls, processor: Any, role: str = "tool", mm_processor_kwargs: dict[str, Any] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> ImageFormat:
        a, b = _IMAGE_SENTINELS
        content = [{"type": "text", "text": a}, {"type": "image"}, {"type": "text", "text": b}]
        call = {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": {}}}
        messages = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "", "tool_calls": [call]},
                    {"role": role, "name": "f", "tool_call_id": "call_0", "content": content}]
        try:
            text = processor.apply_chat_template(messages, tokenize=False, **dict(chat_template_kwargs or {}))
        except Exception as e:
            raise ConfigError(
                f"the processor's chat template cannot render an image in a {role!r} message "
                f"({type(e).__name__}: {e}); set actor_rollout_ref.model.custom_chat_template to one that renders "
                "image content parts, or train a text-only model (tool images are then read as [image WxH fmt])"
            ) from None
        placeholder = text.partition(a)[2].partition(b)[0] if isinstance(text, str) else ""
        if not placeholder:
            raise ConfigError(
                f"the processor's chat template writes nothing for an image part of a {role!r} message; "
                "set actor_rollout_ref.model.custom_chat_template to one that renders image content parts"
            )
        return cls(processor, placeholder, tuple(sorted((mm_processor_kwargs or {}).items())))

    def image_ids(self, image: Any) -> list[int]:
        """The token ids of one image (a PIL image) as the processor expands its placeholder."""
        out = self.processor(text=[self.placeholder], images=[image], **dict(self.processor_kwargs))
        ids = out["input_ids"][0]
        return [int(t) for t in (ids.tolist() if hasattr(ids, "tolist") else ids)]
