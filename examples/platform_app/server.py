"""The application in a child process: uvicorn with several workers on a free loopback port.

What the browser tests and the load check run against, so that they see what
``make app`` serves::

    with AppServer("sqlite:////tmp/app.db", workers=2, log=Path("server.log")) as server:
        server.url          # http://127.0.0.1:<port>
        server.restart()    # stop every worker (each closes the database), start again

Start-up returns once every worker reports its application started (read from
the server's output, which is copied to ``log``). Stop sends SIGTERM (uvicorn's
graceful shutdown: each worker closes its database), then kills whatever is left
of the process group.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import IO

EXAMPLES = Path(__file__).resolve().parent.parent
READY = b"Application startup complete."
#: What the server says when another program took its port between our probe and its bind.
PORT_TAKEN = b"address already in use"
#: Seconds a worker may take to answer uvicorn's health check before it is replaced: more
#: than uvicorn's 5, for a loaded machine (the tests and the load check run on one).
HEALTH_CHECK = 60
#: Seconds a stopping worker waits for requests in flight (a slow client's, say) before it
#: cancels them and closes the database: without a bound, one client holds up the stop.
GRACEFUL_STOP = 5


class AppServer:
    """The platform application over ``url``, served by ``workers`` processes."""

    def __init__(self, url: str, *, workers: int = 2, log: Path, timeout: float = 60) -> None:
        self.hutch_url = url
        self.workers = workers
        self.log = log
        self.timeout = timeout
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, tries: int = 3) -> None:
        """Start the server and return once every worker has started its application."""
        for attempt in range(tries):
            output = self._launch()
            if output.ready.wait(self.timeout) and output.started == self.workers:
                return
            self.stop()
            output.done.wait(self.timeout)
            if PORT_TAKEN not in output.seen or attempt == tries - 1:
                said = output.seen[-4000:].decode(errors="replace")
                raise RuntimeError(f"the platform app did not start; its output:\n{said}")
            self.port = free_port()

    def _launch(self) -> _Output:
        command = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(EXAMPLES),
            "platform_app.main:app", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.workers), "--no-access-log",
            "--timeout-worker-healthcheck", str(HEALTH_CHECK),
            "--timeout-graceful-shutdown", str(GRACEFUL_STOP),
        ]  # fmt: skip
        environment = {**os.environ, "HUTCH_URL": self.hutch_url}
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment,
            start_new_session=True,
        )  # fmt: skip
        assert self._process.stdout is not None
        return _Output(self._process.stdout, self.log, self.workers)

    def stop(self) -> None:
        """Stop every worker: gracefully (each closes its database), then by force."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(self.timeout)
        with suppress(ProcessLookupError):  # (a worker left behind would hold the port, the data)
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def restart(self) -> None:
        """Stop the server and start it again on the same port and data."""
        self.stop()
        self.start(tries=1)

    def __enter__(self) -> AppServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class _Output:
    """A thread copying the server's output to the log, counting the workers that started."""

    def __init__(self, stream: IO[bytes], log: Path, workers: int) -> None:
        self.seen = b""
        self.started = 0
        self.ready = threading.Event()  # every worker started, or the output ended
        self.done = threading.Event()
        self._workers = workers
        threading.Thread(target=self._copy, args=(stream, log), daemon=True).start()

    def _copy(self, stream: IO[bytes], log: Path) -> None:
        with stream, log.open("ab") as copy:
            for line in stream:
                copy.write(line)
                copy.flush()
                self.seen = (self.seen + line)[-65536:]
                if READY in line:
                    self.started += 1
                    if self.started == self._workers:
                        self.ready.set()
        self.ready.set()
        self.done.set()


#: Where each backend keeps the application's data in a folder (absolute, so the SQLite URL
#: has four slashes).
DATA_URLS = {"file": "file://{}/data", "sqlite": "sqlite:///{}/app.db"}
_FORM_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def data_url(backend: str, folder: Path) -> str:
    """The ``HUTCH_URL`` of the application's data in ``folder``, on ``file`` or ``sqlite``."""
    return DATA_URLS[backend].format(folder.resolve())


def form_token(page: str) -> str | None:
    """The CSRF token the forms of a page carry (what a client posts back), if it has one."""
    found = _FORM_TOKEN.search(page)
    return found.group(1) if found else None


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
