"""Client of a Search-R1-compatible retrieval server (``POST /retrieve``).

Queries from many trajectories that arrive within ``window_s`` go out as one request
(``{"queries": [...], "topk": k, "return_scores": true}``), at most ``max_batch``
queries each, so a rollout of thousands of trajectories makes a few dozen requests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from rlfactory_plugins.tools import ToolError, TransientToolError
from rlfactory_tool_search.batcher import Coalescer
from rlfactory_tool_search.corpus import Hit
from rlfactory_tool_search.retriever import Retriever

START_HINT = "start one with `rlfactory-search-server --port PORT` or fix the tool's 'url' option"


class RemoteRetriever(Retriever):
    name = "remote"

    def __init__(self, url: str, timeout: float = 30.0, window_s: float = 0.01, max_batch: int = 128) -> None:
        self.url, self.timeout = url, timeout
        self.window_s, self.max_batch = window_s, max_batch
        self.requests = 0  # HTTP requests sent (what coalescing saves)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._coalescer: Coalescer[tuple[str, int], list[Hit]] | None = None

    def _for_this_loop(self) -> Coalescer[tuple[str, int], list[Hit]]:
        # aiohttp sessions and futures belong to one event loop: make them per loop
        loop = asyncio.get_running_loop()
        if self._coalescer is None or self._loop is not loop:
            self._loop = loop
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._coalescer = Coalescer(self._post, self.window_s, self.max_batch)
        return self._coalescer

    async def asearch(self, queries: list[str], topk: int) -> list[list[Hit]]:
        coalescer = self._for_this_loop()
        return list(await asyncio.gather(*(coalescer.submit((q, topk)) for q in queries)))

    async def _post(self, items: list[tuple[str, int]]) -> list[list[Hit]]:
        """One request for the whole batch, at the largest topk asked; each query keeps its own."""
        topk = max(k for _, k in items)
        payload = {"queries": [q for q, _ in items], "topk": topk, "return_scores": True}
        assert self._session is not None
        self.requests += 1
        try:
            async with self._session.post(self.url, json=payload) as resp:
                if resp.status >= 500:
                    raise TransientToolError(f"search server {self.url} answered {resp.status}: {await resp.text()}")
                if resp.status != 200:
                    raise ToolError(f"search server {self.url} rejected the request ({resp.status}): {await resp.text()}")
                body = await resp.json()
        except asyncio.TimeoutError:
            raise TransientToolError(f"search server {self.url} did not answer within {self.timeout}s") from None
        except aiohttp.ClientError as e:
            raise TransientToolError(f"cannot reach search server {self.url} ({e}); {START_HINT}") from None
        return [[Hit.from_wire(h) for h in ranked[:k]] for ranked, (_, k) in zip(_results(body, self.url, len(items)), items)]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "url": self.url, "requests": self.requests}

    async def aclose(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = self._coalescer = self._loop = None


def _results(body: Any, url: str, expected: int) -> list[list[dict[str, Any]]]:
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, list) or len(result) != expected:
        raise ToolError(f"search server {url} did not answer with a 'result' list of {expected}: {str(body)[:200]}")
    return result
