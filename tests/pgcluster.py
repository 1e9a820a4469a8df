"""A throw-away PostgreSQL cluster for the tests and bench/postgres.py: made in a temporary
folder, always stopped.

Debian's server binaries (``pg_config --bindir``: initdb, pg_ctl, postgres) make
a cluster that listens on 127.0.0.1 and a free port, with a generated password
(so the URLs the tests use carry one, as a deployment's do). As root the
cluster runs as the ``postgres`` user (the server refuses root), in a folder
made for it under ``/tmp`` (a checkout or ``$TMPDIR`` may be private to root),
or under the folder the caller names (the benchmark's, on the disk it measures).
Each test gets a fresh store: a schema of its own in a database shared by the
tests, named on the search path of its URL (see
:mod:`hutch.backends.postgres.testing`); a run of the parity suite gets a
database of its own.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

#: What to run when the binaries are missing (Debian, Ubuntu).
INSTALL = "install PostgreSQL's server: apt-get install postgresql"
#: A bound on every wait for the server (start, stop): a loaded 2-core machine is slow.
WAIT = 120
#: The superuser the cluster is made with (the URLs' user).
USER = "hutch"


class Unavailable(Exception):
    """No cluster can be started here; the message says why and what to install."""


def bindir() -> Path:
    """Where the server binaries are: ``pg_config --bindir``, else Debian's newest version."""
    candidates: list[Path] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        found = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, timeout=30, check=True
        )
        candidates.append(Path(found.stdout.strip()))
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    candidates += reversed(debian)
    for candidate in candidates:
        if all((candidate / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return candidate
    raise Unavailable(f"no PostgreSQL server binaries (initdb, pg_ctl, postgres) found; {INSTALL}")


class Cluster:
    """A PostgreSQL cluster of its own: :meth:`start` it, :meth:`stop` it (always)."""

    def __init__(self, under: Path | None = None) -> None:
        self.bin = bindir()
        self._under = under  # where its folder goes (else a temporary folder others reach)
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self._folder: Path | None = None
        self._databases: set[str] = set()
        self._user = _server_user()

    @property
    def folder(self) -> Path:
        if self._folder is None:
            raise RuntimeError("the cluster was not started")
        return self._folder

    def url(self, database: str = "postgres") -> str:
        """A libpq URL of ``database`` on this cluster, with the password in it."""
        return (
            f"postgresql://{USER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"
        )

    def database(self, name: str) -> str:
        """The URL of the database ``name``, made the first time it is asked for (tests that
        share one keep their stores apart by schema)."""
        if name not in self._databases:
            import psycopg

            with psycopg.connect(self.url(), autocommit=True, connect_timeout=WAIT) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            self._databases.add(name)
        return self.url(name)

    def start(self) -> None:
        """Make the cluster and start it, or raise :class:`Unavailable` saying why."""
        under = self._under or _reachable_temp()
        self._folder = Path(tempfile.mkdtemp(prefix="hutch-pg-", dir=under))
        try:
            if self._user is not None:
                os.chown(self._folder, self._user.pw_uid, self._user.pw_gid)
            password_file = self.folder / "password"
            password_file.write_text(self.password + "\n", encoding="utf-8")
            if self._user is not None:
                os.chown(password_file, self._user.pw_uid, self._user.pw_gid)
            self._run(
                "initdb",
                "-D",
                str(self.folder / "data"),
                "-U",
                USER,
                "-A",
                "scram-sha-256",
                f"--pwfile={password_file}",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",  # the cluster is thrown away; the server itself runs with fsync
            )
            password_file.unlink()
            for _ in range(3):  # another program may take the free port before the server
                self.port = _free_port()
                options = (
                    f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on "
                    "-c max_connections=200"
                )
                data, log = str(self.folder / "data"), str(self.folder / "log")
                try:
                    self._run(
                        "pg_ctl",
                        "-D",
                        data,
                        "-l",
                        log,
                        "-w",
                        "-t",
                        str(WAIT),
                        "-o",
                        options,
                        "start",
                    )
                    return
                except Unavailable:
                    if "could not bind" not in self.log_tail():
                        raise
            raise Unavailable(f"the server found no free port:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (fast, else at once) and remove its folder; twice does nothing."""
        if self._folder is None:
            return
        data = self.folder / "data"
        if (data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", str(WAIT), "stop")
            except Unavailable:
                with contextlib.suppress(Unavailable):
                    self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self._folder, ignore_errors=True)
        self._folder = None

    def restart(self, mode: str = "fast") -> None:
        """Restart the server on the same port, returning once it takes connections again:
        ``fast`` ends every session (as an administrator's restart does), ``immediate`` kills
        the server (a crash: it recovers from its WAL as it starts)."""
        data, log = str(self.folder / "data"), str(self.folder / "log")
        self._run("pg_ctl", "-D", data, "-l", log, "-m", mode, "-w", "-t", str(WAIT), "restart")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.folder / "log").read_text(encoding="utf-8", errors="replace")
        except (OSError, RuntimeError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _run(self, program: str, *args: str) -> None:
        """Run a server binary (as the ``postgres`` user when root); :class:`Unavailable` if
        it fails."""
        command = [str(self.bin / program), *args]
        user = None if self._user is None else self._user.pw_uid
        group = None if self._user is None else self._user.pw_gid
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=WAIT + 30,
                check=False,
                cwd=self.folder,
                user=user,
                group=group,
                extra_groups=[] if self._user is not None else None,
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise Unavailable(f"{program} failed: {error}") from error
        if result.returncode != 0:
            raise Unavailable(
                f"{program} failed ({result.returncode}): {result.stderr.strip()}\n"
                f"{self.log_tail()}"
            )


@contextlib.contextmanager
def running(under: Path | None = None) -> Iterator[Cluster]:
    """A started cluster (its folder made in ``under``, which the server's user must reach),
    stopped when the block ends however it ends."""
    cluster = Cluster(under)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def running_or_skip() -> Iterator[Cluster]:
    """:func:`running`, for a test: skipped, saying why, where no cluster can start."""
    import pytest

    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(running())
        except Unavailable as error:
            pytest.skip(f"no PostgreSQL cluster could be started: {error}")
        yield cluster


def _server_user() -> pwd.struct_passwd | None:
    """The user the server runs as: ``postgres`` when this process is root, else this one."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable(
            f"running as root, and there is no 'postgres' user to run the server as; {INSTALL} "
            "(it adds the user)"
        ) from None


def _reachable_temp() -> str:
    """A temporary folder other users can reach (``$TMPDIR`` may be private to this user)."""
    if os.geteuid() != 0:
        return tempfile.gettempdir()
    return "/tmp"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
