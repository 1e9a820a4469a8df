"""The application in a child process: uvicorn with several workers on a free loopback port.

What the browser tests and the load benchmark run against, so that they see what
``make app`` serves::

    with AppServer("sqlite:////tmp/app.db", workers=2) as server:
        server.url          # http://127.0.0.1:<port>
        server.restart()    # stop every worker (each closes the database), start again

Start-up waits until every worker reports its application started; stop sends
SIGTERM (uvicorn's graceful shutdown) and kills the process group only if that
does not end it in time. The server's output goes to ``log`` (a file).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

EXAMPLES = Path(__file__).resolve().parent.parent
READY = b"Application startup complete."


class AppServer:
    """The platform application over ``url``, served by ``workers`` processes."""

    def __init__(self, url: str, *, workers: int = 2, log: Path, timeout: float = 60) -> None:
        self.hutch_url = url
        self.workers = workers
        self.log = log
        self.timeout = timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and return once every worker has started its application."""
        command = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(EXAMPLES),
            "platform_app.main:app", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.workers), "--no-access-log",
        ]  # fmt: skip
        environment = {**os.environ, "HUTCH_URL": self.hutch_url}
        with self.log.open("ab") as log:
            offset = log.tell()
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environment,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.timeout
        while self.log.read_bytes()[offset:].count(READY) < self.workers:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_bytes()[offset:][-4000:].decode(errors="replace")
                raise RuntimeError(f"the platform app did not start; its output:\n{tail}")
            time.sleep(0.05)  # (polling the log: there is no event to wait on)

    def stop(self) -> None:
        """Stop every worker: gracefully (each closes its database), else by force."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self) -> None:
        """Stop the server and start it again on the same port and data."""
        self.stop()
        self.start()

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


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
