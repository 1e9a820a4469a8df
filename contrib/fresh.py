"""Middlewares that refresh the database at the start of each request (ASGI and WSGI).

Every process follows the others' commits within 50 ms anyway (the follower
thread). A web application with several worker processes needs more when a
client writes through one worker and reads through another at once (create,
then redirect to the new page): the read must see the write. These take in
everything committed before the request began, so it does:

    app = FreshASGI(app, lambda: db)        # FastAPI, Starlette: app.add_middleware(...)
    application = FreshWSGI(application, db)  # Flask, Django, gunicorn

``db`` is the :class:`hutch.Database`, or a function returning it (for an
application that opens it at start-up, in each worker). A refresh costs one
``stat`` when nothing changed; otherwise it reads what others committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from hutch.database import Database

DatabaseSource = Database | Callable[[], Database]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Any]
Send = Callable[[MutableMapping[str, Any]], Any]


def _database(source: DatabaseSource) -> Database:
    return source if isinstance(source, Database) else source()


class FreshASGI:
    """ASGI middleware: each HTTP request and WebSocket session starts with
    ``db.refresh()``, run in a worker thread when there is something to take in (it
    may wait for another process's commit), so the event loop never waits."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Any], db: DatabaseSource) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            db = _database(self.db)
            if not db.closed and db.backend.behind():
                await asyncio.get_running_loop().run_in_executor(None, db.refresh)
        await self.app(scope, receive, send)


class FreshWSGI:
    """WSGI middleware: each request starts with ``db.refresh()``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], db: DatabaseSource) -> None:
        self.app = app
        self.db = db

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        db = _database(self.db)
        if not db.closed:
            db.refresh()
        return self.app(environ, start_response)
