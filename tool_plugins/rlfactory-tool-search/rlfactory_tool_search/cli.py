"""``rlfactory-search-server``: serve ``POST /retrieve`` from one index for a whole cluster."""

from __future__ import annotations

import asyncio
import enum
import signal
from pathlib import Path
from typing import Optional

import typer

from rlfactory_plugins.errors import RLFactoryError
from rlfactory_tool_search.retriever import LocalRetriever
from rlfactory_tool_search.server import make_app, start
from rlfactory_tool_search.tool import SearchOptions, make_retriever

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class Backend(str, enum.Enum):
    bm25 = "bm25"
    dense = "dense"


async def _serve(retriever: LocalRetriever, host: str, port: int, topk: int, window_ms: float, max_batch: int) -> None:
    await asyncio.to_thread(retriever.load)  # build or load the index before saying we are ready
    runner, base = await start(make_app(retriever, topk, window_ms / 1000, max_batch), host, port)
    info = retriever.describe()
    typer.echo(f"rlfactory-search-server: {info.get('passages')} passages ({info['backend']}) at {base}/retrieve")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0 for the whole cluster)"),
    port: int = typer.Option(8000, help="port (0: any free port; the URL printed says which)"),
    corpus: Optional[Path] = typer.Option(None, help="JSONL corpus of {id, contents} rows; default: the shipped one"),
    backend: Backend = typer.Option(Backend.bm25, help="index type"),
    topk: int = typer.Option(3, min=1, help="passages per query when a request gives no topk"),
    cache_dir: Optional[Path] = typer.Option(None, help="index cache root (default ~/.cache/rlfactory/<backend>)"),
    dense_model: Optional[str] = typer.Option(None, help="dense: sentence-transformers model path or name"),
    batch_window_ms: float = typer.Option(5.0, min=0, help="how long to gather concurrent requests into one search"),
    max_batch: int = typer.Option(512, min=1, help="most queries searched at once"),
) -> None:
    """Serve Search-R1's /retrieve API (and GET /health) over a BM25 or dense index."""
    try:
        options = SearchOptions(
            backend=backend.value, corpus=str(corpus) if corpus else None,
            cache_dir=str(cache_dir) if cache_dir else None, dense_model=dense_model,
            topk=topk, max_topk=max(topk, 10),
        )
        retriever = make_retriever(options)
        assert isinstance(retriever, LocalRetriever)
        asyncio.run(_serve(retriever, host, port, topk, batch_window_ms, max_batch))
    except (RLFactoryError, OSError) as e:
        typer.secho(f"rlfactory-search-server: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def main() -> None:
    app()
