"""Text ↔ token ids on the rollout's hot path (every turn's decode, every observation's encode).

For a fast (Rust) tokenizer, ``tokenizer.encode`` / ``tokenizer.decode`` of transformers
wrap one call of the backend in Python bookkeeping (argument checks, batching, an
element-wise type check of every id) that costs more than the backend call itself for a
short turn. :class:`Codec` calls the backend directly when that gives the same result:
no truncation or padding configured on the backend, the backend's special-token
splitting equal to the tokenizer's, and no ``clean_up_tokenization_spaces``. Otherwise,
and for slow tokenizers, it calls the tokenizer's own methods.
"""

from __future__ import annotations

from typing import Any


class Codec:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._backend = backend if backend is not None and hasattr(backend, "encode_batch") else None

    def _encode_backend(self) -> Any | None:
        backend = self._backend
        if backend is None or backend.truncation is not None or backend.padding is not None:
            return None
        if backend.encode_special_tokens != bool(getattr(self.tokenizer, "split_special_tokens", False)):
            return None
        return backend

    def _decode_backend(self) -> Any | None:
        if self._backend is None or getattr(self.tokenizer, "clean_up_tokenization_spaces", False):
            return None
        return self._backend

    def encode(self, text: str) -> list[int]:
        """``tokenizer.encode(text, add_special_tokens=False)``."""
        if not text:
            return []
        backend = self._encode_backend()
        if backend is None:
            return list(self.tokenizer.encode(text, add_special_tokens=False))
        return backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], *, skip_special_tokens: bool) -> str:
        """``tokenizer.decode(ids, skip_special_tokens=...)``."""
        backend = self._decode_backend()
        if backend is None:
            return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
        return backend.decode(ids, skip_special_tokens=skip_special_tokens)
