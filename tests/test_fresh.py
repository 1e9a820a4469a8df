"""The middlewares of ``hutch.contrib.fresh``: a request sees every commit another process
acknowledged before it began, even with the follower thread off."""

from __future__ import annotations

import json
import sys
import wsgiref.util
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from children import Child

import hutch
from hutch.contrib.fresh import FreshASGI, FreshWSGI

WRITER = """\
import os, sys
import hutch

db = hutch.open(sys.argv[1])
for line in sys.stdin:
    db.store.set_row("posts", line.strip(), {"title": "hello"})
    os.write(1, b"wrote\\n")
"""


@pytest.fixture
def other_worker(tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """Another process of the same store: ``write(row_id)`` returns once it committed."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    hutch.open(tmp_path / "data").close()
    child = Child("writer", [sys.executable, str(script), str(tmp_path / "data")], tmp_path / "e")

    def write(row_id: str) -> None:
        child.send(row_id)
        child.expect("wrote")

    yield write
    child.end()


def reading(db: hutch.Database) -> Callable[[dict[str, Any]], bytes]:
    def body(environ: dict[str, Any]) -> bytes:
        row_id = environ["PATH_INFO"].strip("/")
        return json.dumps(db.store.get_row("posts", row_id)).encode()

    return body


def test_the_wsgi_middleware_refreshes_before_each_request(
    tmp_path: Path, other_worker: Callable[[str], None]
) -> None:
    with hutch.open(tmp_path / "data", follow=False) as db:
        body = reading(db)

        def application(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body(environ)]

        def get(app: Callable[..., Iterable[bytes]], path: str) -> Any:
            environ: dict[str, Any] = {"PATH_INFO": path}
            wsgiref.util.setup_testing_defaults(environ)
            return json.loads(b"".join(app(environ, lambda status, headers: None)))

        other_worker("p1")
        assert get(application, "/p1") is None  # no follower, no refresh: not seen yet
        assert get(FreshWSGI(application, db), "/p1") == {"title": "hello"}
        other_worker("p2")
        assert get(FreshWSGI(application, lambda: db), "/p2") == {"title": "hello"}


def test_the_asgi_middleware_refreshes_before_each_request(
    tmp_path: Path, other_worker: Callable[[str], None]
) -> None:
    with hutch.open(tmp_path / "data", follow=False) as db:
        body = reading(db)

        async def application(scope: Any, receive: Any, send: Any) -> None:
            assert scope["type"] == "http"
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body({"PATH_INFO": scope["path"]})})

        async def get(app: Any, path: str) -> Any:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return (await client.get(path)).json()

        other_worker("p1")
        assert anyio.run(get, application, "/p1") is None
        assert anyio.run(get, FreshASGI(application, db), "/p1") == {"title": "hello"}
        other_worker("p2")
        assert anyio.run(get, FreshASGI(application, lambda: db), "/p2") == {"title": "hello"}
