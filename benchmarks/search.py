"""Search throughput: embedded BM25 queries/s, and what going through the server costs.

Measures, on the shipped corpus (or ``--corpus``) with its QA questions as queries:

- ``bm25_batch_qps``: in-process BM25, all queries in one call (how the server searches)
- ``bm25_single_qps`` / ``inproc_ms``: in-process, one query a call, through the tool
- ``remote_ms``: one query a call through the tool's remote backend and a real
  ``rlfactory-search-server`` process on 127.0.0.1; ``overhead_ms`` = remote - in-process
- ``remote_concurrent_qps`` / ``remote_requests``: all queries at once from concurrent
  tool calls, coalesced into few HTTP requests

Prints one JSON line.  ``python benchmarks/search.py [--queries 600] [--corpus FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlfactory_tool_search.bm25 import BM25Retriever
from rlfactory_tool_search.data import shipped_corpus, shipped_qa
from rlfactory_tool_search.tool import SearchTool


def start_server(corpus: Path, cache: Path) -> tuple[subprocess.Popen, str]:
    server = Path(sys.executable).parent / "rlfactory-search-server"
    proc = subprocess.Popen(
        [str(server), "--port", "0", "--corpus", str(corpus), "--cache-dir", str(cache)],
        stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+/retrieve)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"search server did not start: {line!r}")
    return proc, match.group(1)


async def per_call_ms(tool: SearchTool, queries: list[str]) -> float:
    await tool.acall({"query": queries[0]})  # warm up: index load, connection
    start = time.perf_counter()
    for q in queries:
        await tool.acall({"query": q})
    return (time.perf_counter() - start) / len(queries) * 1000


async def concurrent_qps(tool: SearchTool, queries: list[str]) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(tool.acall({"query": q}) for q in queries))
    return len(queries) / (time.perf_counter() - start)


async def run(corpus: Path, queries: list[str], cache: Path) -> dict:
    retriever = BM25Retriever(corpus, cache)
    retriever.load()
    start = time.perf_counter()
    retriever.search(queries, 3)
    batch_qps = len(queries) / (time.perf_counter() - start)

    local = SearchTool().configure({"corpus": str(corpus), "cache_dir": str(cache)})
    inproc = await per_call_ms(local, queries)
    proc, url = start_server(corpus, cache)
    try:
        remote = SearchTool().configure({"backend": "remote", "url": url, "batch_window_ms": 5})
        remote_ms = await per_call_ms(remote, queries)
        sent = remote.retriever.requests
        qps = await concurrent_qps(remote, queries)
        requests = remote.retriever.requests - sent
        await remote.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return {
        "benchmark": "search", "passages": len(retriever.corpus), "queries": len(queries),
        "bm25_batch_qps": round(batch_qps, 1), "bm25_single_qps": round(1000 / inproc, 1),
        "inproc_ms": round(inproc, 3), "remote_ms": round(remote_ms, 3), "overhead_ms": round(remote_ms - inproc, 3),
        "remote_concurrent_qps": round(qps, 1), "remote_requests": requests,
        "client_window_ms": 5, "server_window_ms": 5,  # coalescing windows: most of remote_ms when calls come one by one
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=None, help="JSONL corpus (default: the shipped one)")
    parser.add_argument("--queries", type=int, default=600, help="how many queries (the QA questions, repeated)")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in shipped_qa().read_text().splitlines()]
    queries = (questions * (args.queries // len(questions) + 1))[: args.queries]
    with tempfile.TemporaryDirectory() as cache:
        print(json.dumps(asyncio.run(run(args.corpus or shipped_corpus(), queries, Path(cache)))))


if __name__ == "__main__":
    main()
