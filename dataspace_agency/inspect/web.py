"""The inspector's web side: a Starlette app served by Hypercorn on trio.

Why these: Starlette is a small, well-kept ASGI toolkit (routing, JSON and streaming
responses) that runs on trio through anyio, and Hypercorn is an ASGI server with a
native trio worker (``hypercorn.trio.serve``), so the web server runs as tasks in the
same trio loop as the dataspace runtime: handlers read the view directly, with no
thread hop and no lock, and no HTTP is parsed by hand here.

Routes (all read-only):

* ``/``: the page (``page.html``: plain HTML and one small script, no build step);
* ``/api/agents``, ``/api/requests``, ``/api/status``: JSON (see :class:`~.view.View`);
* ``/api/facts?pattern=T``: the facts matching template ``T`` now (see
  :mod:`.patterns`);
* ``/api/events``: server-sent events, a ``snapshot`` of everything on each change
  (at most ten a second, and at least one a second for ages and rates);
* ``/api/facts/events?pattern=T``: server-sent events ``added`` / ``removed`` as facts
  matching ``T`` come and go (the current ones first).

Errors are JSON ``{"error": "..."}``: 400 for a bad pattern, 503 while the dataspace is
not reachable (an empty list would claim that nobody is there).
"""

from __future__ import annotations

import contextlib
import json
import logging
from importlib import resources
from typing import Any, AsyncIterator, Iterator

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..native import DataspaceHandle
from .feed import Source
from .patterns import BadPattern, Template, parse_template
from .view import text

__all__ = ["make_app", "oserror_unwrapped", "serve"]

log = logging.getLogger(__name__)

MAX_FACTS = 1000  # rows /api/facts returns; the rest are counted
QUERY_TIMEOUT = 5.0  # seconds for /api/facts to get the server's answer
SNAPSHOT_GAP = 0.1  # seconds: changes closer than this go out in one snapshot
HEARTBEAT = 1.0  # seconds: a snapshot at least this often (ages and rates move)

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _page() -> str:
    return resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, allow_nan=False, default=str)}\n\n"


def _fact_row(template: Template, captures: tuple) -> dict:
    return {"fact": text(captures[0]),
            "captures": {name: text(value) for name, value in zip(template.names,
                                                                  captures[1:])}}


def make_app(source: Source) -> Starlette:
    """The inspector's ASGI app over ``source`` (its view and dataspace handle)."""
    view = source.view

    def unreachable() -> JSONResponse | None:
        if source.connected:
            return None
        return _error(503, f"not connected to the dataspace: {view.status.message}")

    def template_of(request: Request) -> Template | JSONResponse:
        try:
            return parse_template(request.query_params.get("pattern", ""))
        except BadPattern as exc:
            return _error(400, str(exc))

    async def page(_request: Request) -> Response:
        return HTMLResponse(_page())

    async def status(_request: Request) -> Response:
        return JSONResponse(view.status_json())

    async def agents(_request: Request) -> Response:
        return unreachable() or JSONResponse(view.agents_json())

    async def requests(_request: Request) -> Response:
        return unreachable() or JSONResponse(view.requests_json())

    def checked(request: Request) -> tuple[Template, DataspaceHandle] | JSONResponse:
        """The request's template and the handle to look with, or why not."""
        template = template_of(request)
        if isinstance(template, JSONResponse):
            return template
        problem = unreachable()
        if problem is not None:
            return problem
        assert source.handle is not None
        return template, source.handle

    async def facts(request: Request) -> Response:
        ready = checked(request)
        if isinstance(ready, JSONResponse):
            return ready
        template, handle = ready
        with trio.move_on_after(QUERY_TIMEOUT):
            found = await handle.query(template.pattern)
            rows = [_fact_row(template, captures) for captures in found[:MAX_FACTS]]
            return JSONResponse({"pattern": template.text, "names": list(template.names),
                                 "count": len(found), "truncated": len(found) > MAX_FACTS,
                                 "facts": rows})
        return _error(503, f"the dataspace did not answer within {QUERY_TIMEOUT:g} s"
                           f" ({view.status.message})")

    async def events(_request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            while True:
                version = view.version
                yield _sse("snapshot", view.snapshot())
                await trio.sleep(SNAPSHOT_GAP)
                with trio.move_on_after(HEARTBEAT):
                    await view.wait_changed(version)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers=_SSE_HEADERS)

    async def fact_events(request: Request) -> Response:
        ready = checked(request)
        if isinstance(ready, JSONResponse):
            return ready
        template, handle = ready

        async def stream() -> AsyncIterator[str]:
            yield _sse("start", {"pattern": template.text, "names": list(template.names)})
            async with handle.observe(template.pattern) as found:
                async for event in found:
                    yield _sse(event.kind, _fact_row(template, event.captures))
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers=_SSE_HEADERS)

    return Starlette(routes=[
        Route("/", page),
        Route("/api/status", status),
        Route("/api/agents", agents),
        Route("/api/requests", requests),
        Route("/api/facts", facts),
        Route("/api/events", events),
        Route("/api/facts/events", fact_events),
    ])


async def serve(source: Source, host: str, port: int, *,
                task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the inspector on ``host:port`` (port 0: a free one) until cancelled; starts
    (for ``nursery.start``) with the page's URL once listening. A port that cannot be
    bound raises that ``OSError`` itself (not wrapped in Hypercorn's exception groups)."""
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = log  # Hypercorn's own errors go to our logger
    config.graceful_timeout = 0.5  # event streams never end by themselves

    class Started:  # Hypercorn reports its URLs; we report the page's
        @staticmethod
        def started(urls: list[str]) -> None:
            task_status.started(urls[0] + "/")
    with oserror_unwrapped():
        await hypercorn_serve(make_app(source), config, task_status=Started())


@contextlib.contextmanager
def oserror_unwrapped() -> Iterator[None]:
    """Raise an ``OSError`` (say, a port in use) found in an exception group as itself,
    so callers can catch it; nurseries wrap what their tasks raise."""
    try:
        yield
    except BaseExceptionGroup as group:
        failed, _rest = group.split(OSError)
        if failed is None:
            raise
        while isinstance(failed, BaseExceptionGroup):
            failed = failed.exceptions[0]
        raise failed from None
