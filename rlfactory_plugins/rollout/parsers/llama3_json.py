"""Llama 3.x JSON tool calls: ``{"name": ..., "parameters": {...}}`` objects, optionally
after ``<|python_tag|>`` and separated by ``;``; observations through the chat template."""

from __future__ import annotations

import json

from rlfactory_plugins.rollout.parsers.base import ParsedCall, ParseResult, ToolCallParser

PYTHON_TAG = "<|python_tag|>"
_ARGS_KEYS = ("parameters", "arguments")


def _looks_like_call(text: str, start: int) -> bool:
    """Does the ``{`` at ``start`` open an object whose first key is ``"name"``?"""
    return text[start + 1 :].lstrip().startswith('"name"')


class Llama3JsonParser(ToolCallParser):
    name = "llama3_json"

    def _parse(self, text: str) -> ParseResult:
        decoder = json.JSONDecoder()
        calls: list[ParsedCall] = []
        kept: list[str] = []
        body = text.replace(PYTHON_TAG, "")
        pos = 0
        while (start := body.find("{", pos)) != -1:
            kept.append(body[pos:start])
            try:
                obj, end = decoder.raw_decode(body, start)
            except json.JSONDecodeError:
                if not _looks_like_call(body, start):
                    kept.append("{")
                    pos = start + 1
                    continue
                raw = body[start:].strip()  # an unreadable call runs to the end of the turn
                obj, repaired, error = self.load_json(raw)
                call = ParsedCall(raw=raw, error=error) if error else self.call_from_object(obj, raw, repaired, _ARGS_KEYS)
                calls.append(call)
                pos = len(body)
                break
            raw = body[start:end]
            if isinstance(obj, dict) and "name" in obj and any(k in obj for k in _ARGS_KEYS):
                calls.append(self.call_from_object(obj, raw, False, _ARGS_KEYS))
            else:
                kept.append(raw)
            pos = end
        kept.append(body[pos:])
        if calls:  # drop the ";" separators between calls
            kept = [piece for piece in kept if piece.strip(" \t\n;")]
        content = "".join(kept).strip()
        return ParseResult(content=content, calls=calls)
