"""Load check of the example platform application (``examples/platform_app``), loopback only.

For each configuration, a ``file://`` folder and a SQLite file, each served by 2
and by 4 uvicorn workers (``AppServer``; ``--workers``), on fresh data:

- Set-up, through HTTP as a browser does it: ``--users`` people sign up (the
  CSRF token read from the form, each person's cookies kept by their own
  client), each creates an organisation and a project in it.
- Load: ``--requests`` requests, ``--concurrency`` at once, half of them writes:
  provision a resource in one's project (``POST /projects/{id}/resources``; a
  303 to ``/resources/{id}`` acknowledges it) or, one in five, change one's
  project's status (a 303; one person's status changes are sent one after the
  other, so the last acknowledged one is the one that must stay); half reads:
  one's project page (it lists the project's resources, more as the load goes
  on) or organisation page (a 200). Redirects are not followed. Requests per second
  over the load, the latency of each request (p50, p99: all, reads, writes),
  the errors (any other status, or no answer), and the CPU time per request of
  the server's processes and of the client.
- Then the server stops (each worker closes the database) and the data is
  opened again: every acknowledged resource must be there, in its project,
  under its name, and every project must hold its last acknowledged status.

The two backends are compared at equal workers, and 4 workers with 2 on each
backend. The client runs on the same machine as the server and takes part of
its CPU; the machine's load average before each configuration shows whether
something else did too. The run fails (exit status 1) on any error or lost write.

Everything lives in a temp folder under ``--dir`` (default: the current folder,
not ``/tmp``, which may be a tmpfs where fsync costs nothing).

    python bench/app.py [--quick] [--requests 2000] [--concurrency 50] [--users 20]
                        [--workers 2,4] [--dir .]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from machine import cpu_model, file_system, fmt_time

import hutch
from hutch.plugins.platform import PlatformRepositories, ProjectStatus, ResourceType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
from platform_app.server import AppServer, data_url, form_token  # noqa: E402

PASSWORD = "load-check-password"
#: The share of writes that change a project's status (the others provision a resource).
STATUS_SHARE = 0.2
SEED = 20240601
TYPES = [kind.value for kind in ResourceType]
#: How many error messages and missing ids a configuration prints at most.
SHOWN = 10


class SetupFailed(Exception):
    """The application did not answer the set-up as a browser expects."""


@dataclass
class Person:
    """A signed-up user, with their own cookies, CSRF token, organisation and project."""

    client: httpx.AsyncClient
    csrf: str
    organisation_id: str
    project_id: str
    #: One status change at a time for this person's project: the last acknowledged one stays.
    status_turn: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class Operation:
    """One request of the load: ``kind`` is resource, status, project or organisation."""

    number: int
    kind: str
    person: int
    value: str = ""

    @property
    def writes(self) -> bool:
        return self.kind in ("resource", "status")


@dataclass
class Load:
    """What the load did: latencies in seconds, errors, and the acknowledged writes."""

    seconds: float = 0.0
    reads: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: resource id -> (project id, name, type), for each acknowledged provisioning
    resources: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: project id -> its last acknowledged status
    statuses: dict[str, str] = field(default_factory=dict)
    status_changes: int = 0
    #: CPU seconds the client (this process) and the server (its processes) used in the load
    client_cpu: float = 0.0
    server_cpu: float | None = None

    @property
    def count(self) -> int:
        return len(self.reads) + len(self.writes) + len(self.errors)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


@dataclass
class Outcome:
    """One configuration's run."""

    label: str
    backend: str
    workers: int
    setup: float
    load: Load
    lost: list[str]
    #: The machine's 1-minute load average as the configuration started (others' work shows).
    busy_before: float | None = None


def percentile(latencies: list[float], p: float) -> float | None:
    if not latencies:
        return None
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


# -- set-up -------------------------------------------------------------------------------------


def csrf_of(response: httpx.Response) -> str:
    found = form_token(response.text)
    if response.status_code != 200 or found is None:
        raise SetupFailed(f"GET {response.url.path}: {response.status_code}, no CSRF token")
    return found


def redirected(response: httpx.Response, pattern: str) -> str:
    """The id in the Location of a 303 that matches ``pattern``; else :class:`SetupFailed`."""
    location = response.headers.get("location", "")
    found = re.fullmatch(pattern, location)
    if response.status_code != 303 or found is None:
        raise SetupFailed(
            f"POST {response.url.path}: {response.status_code} to {location!r}: "
            f"{response.text[:300]!r}"
        )
    return found.group(1)


async def sign_up(url: str, n: int) -> Person:
    """Person ``n`` signs up, creates an organisation and a project in it."""
    client = httpx.AsyncClient(base_url=url, timeout=120, follow_redirects=False)
    try:
        csrf = csrf_of(await client.get("/signup"))
        posted = {"email": f"person{n}@example.com", "name": f"Person {n}", "password": PASSWORD}
        redirected(await client.post("/signup", data={**posted, "csrf": csrf}), r"(/organisations)")
        csrf = csrf_of(await client.get("/organisations"))  # the session's token from now on
        created = await client.post("/organisations", data={"name": f"Org {n}", "csrf": csrf})
        organisation_id = redirected(created, r"/organisations/([^/]+)")
        created = await client.post(
            f"/organisations/{organisation_id}/projects", data={"name": f"Work {n}", "csrf": csrf}
        )
        project_id = redirected(created, r"/projects/([^/]+)")
    except BaseException:
        await client.aclose()
        raise
    return Person(client, csrf, organisation_id, project_id)


# -- the load -----------------------------------------------------------------------------------


def plan(requests: int, people: int) -> list[Operation]:
    """``requests`` operations, half writes, in a random order that is the same every run."""
    chance = random.Random(SEED)
    kinds = ["write"] * (requests // 2) + ["read"] * (requests - requests // 2)
    chance.shuffle(kinds)
    operations = []
    for number, kind in enumerate(kinds):
        person = chance.randrange(people)
        if kind == "read":
            operations.append(Operation(number, chance.choice(["project", "organisation"]), person))
        elif chance.random() < STATUS_SHARE:
            status = chance.choice(list(ProjectStatus)).value
            operations.append(Operation(number, "status", person, status))
        else:
            operations.append(Operation(number, "resource", person, chance.choice(TYPES)))
    return operations


async def perform(operation: Operation, person: Person, load: Load) -> None:
    """Send one request, check its answer and record its latency (or the error)."""
    client, project_id = person.client, person.project_id
    what = f"#{operation.number} {operation.kind}"
    try:
        if operation.kind == "resource":
            name = f"resource {operation.number}"
            data = {"name": name, "type": operation.value, "csrf": person.csrf}
            began = time.perf_counter()
            response = await client.post(f"/projects/{project_id}/resources", data=data)
            took = time.perf_counter() - began
            found = re.fullmatch(r"/resources/([^/]+)", response.headers.get("location", ""))
            if response.status_code == 303 and found:
                load.resources[found.group(1)] = (project_id, name, operation.value)
        elif operation.kind == "status":
            async with person.status_turn:
                data = {"status": operation.value, "csrf": person.csrf}
                began = time.perf_counter()
                response = await client.post(f"/projects/{project_id}/status", data=data)
                took = time.perf_counter() - began
                location = response.headers.get("location")
                found = re.fullmatch(r"/projects/([^/]+)", location or "")
                if response.status_code == 303 and location == f"/projects/{project_id}":
                    load.statuses[project_id] = operation.value
                    load.status_changes += 1
        else:
            page = (
                f"/projects/{project_id}"
                if operation.kind == "project"
                else f"/organisations/{person.organisation_id}"
            )
            began = time.perf_counter()
            response = await client.get(page)
            took = time.perf_counter() - began
            found = None
    except httpx.HTTPError as error:
        load.errors.append(f"{what}: {type(error).__name__}: {error}")
        return
    expected = 303 if operation.writes else 200
    if response.status_code != expected or (operation.writes and found is None):
        location = response.headers.get("location", "")
        load.errors.append(
            f"{what}: {response.status_code} {location!r} {response.text[:200]!r} "
            f"after {fmt_time(took).strip()}"
        )
        return
    (load.writes if operation.writes else load.reads).append(took)


async def exercise(url: str, people: int, requests: int, concurrency: int) -> tuple[float, Load]:
    """Set the application up and load it: the set-up's seconds and what the load did."""
    began = time.perf_counter()
    signed_up = await asyncio.gather(
        *(sign_up(url, n) for n in range(people)), return_exceptions=True
    )
    persons = [each for each in signed_up if isinstance(each, Person)]
    try:
        for each in signed_up:
            if isinstance(each, BaseException):
                raise each
        setup = time.perf_counter() - began
        operations = iter(plan(requests, people))
        load = Load()

        async def worker() -> None:
            for operation in operations:  # one iterator shared by every worker
                await perform(operation, persons[operation.person], load)

        server_cpu, client_cpu = descendants_cpu(), time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        load.seconds = time.perf_counter() - began
        load.client_cpu = time.process_time() - client_cpu
        used = descendants_cpu()
        load.server_cpu = None if used is None or server_cpu is None else used - server_cpu
        return setup, load
    finally:
        for person in persons:
            await person.client.aclose()


def descendants_cpu() -> float | None:
    """CPU seconds (user and system) used so far by the living processes this one started, and
    theirs (the server and its workers): from ``/proc``, else ``None``."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    try:
        tick = os.sysconf("SC_CLK_TCK")
        names = os.listdir("/proc")
    except (OSError, ValueError, AttributeError):
        return None
    for name in names:
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rpartition(")")[2].split()  # after the command, which may hold spaces
        parents[int(name)] = int(fields[1])
        used[int(name)] = (int(fields[11]) + int(fields[12])) / tick
    total, mine = 0.0, {os.getpid()}
    grew = True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in mine} - mine
        total += sum(used[pid] for pid in found)
        mine |= found
        grew = bool(found)
    return total


# -- after the load -----------------------------------------------------------------------------


def lost_writes(url: str, load: Load) -> list[str]:
    """The acknowledged writes the data does not hold, opened again once the server stopped."""
    db = hutch.open(url, plugins=["platform", "auth"])
    try:
        repos = PlatformRepositories.of(db)
        lost = []
        for resource_id, (project_id, name, kind) in load.resources.items():
            resource = repos.resources.get(resource_id)
            if resource is None:
                lost.append(f"resource {resource_id} (missing)")
            elif (resource.project_id, resource.name, resource.type.value) != (
                project_id,
                name,
                kind,
            ):
                lost.append(
                    f"resource {resource_id} (holds {resource.project_id}, {resource.name!r}, "
                    f"{resource.type.value}; acknowledged {project_id}, {name!r}, {kind})"
                )
        for project_id, status in load.statuses.items():
            project = repos.projects.get(project_id)
            if project is None:
                lost.append(f"project {project_id} (missing)")
            elif project.status.value != status:
                lost.append(
                    f"project {project_id} (status {project.status.value}, acknowledged {status})"
                )
        return lost
    finally:
        db.close()


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def run(
    backend: str, workers: int, root: Path, people: int, requests: int, concurrency: int
) -> Outcome:
    """One configuration, on fresh data: set-up, load, stop, and the check of its writes."""
    label = f"{backend}:// {workers}w"
    busy_before = load_average()
    folder = root / f"{backend}-{workers}"
    folder.mkdir()
    url = data_url(backend, folder)
    log = folder / "server.log"
    try:
        with AppServer(url, workers=workers, log=log) as server:
            setup, load = asyncio.run(exercise(server.url, people, requests, concurrency))
    except (SetupFailed, httpx.HTTPError) as error:
        print(f"{label}: the set-up failed: {error}\nserver log:\n{log_tail(log)}", flush=True)
        return Outcome(label, backend, workers, 0.0, Load(errors=[str(error)]), [], busy_before)
    if load.errors:
        print(f"{label}: server log (tail):\n{log_tail(log)}", file=sys.stderr, flush=True)
    return Outcome(label, backend, workers, setup, load, lost_writes(url, load), busy_before)


# -- the report ---------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def row(outcome: Outcome) -> str:
    load = outcome.load
    every = load.reads + load.writes
    times = [
        percentile(latencies, p)
        for latencies in (every, load.reads, load.writes)
        for p in (0.5, 0.99)
    ]
    return (
        f"{outcome.label:13} {load.rate:7,.0f} "
        + " ".join(f"{fmt_time(each):>10}" for each in times)
        + f" {len(load.errors):6} {len(outcome.lost):5} {outcome.setup:7.1f} s"
    )


def cpu_use(load: Load) -> str:
    """CPU time per request of the server and of the client, and how busy the machine was."""
    client = load.client_cpu / load.count
    if load.server_cpu is None:
        return f"CPU per request: client {fmt_time(client).strip()} (the server's: unknown)"
    busy = (load.server_cpu + load.client_cpu) / (load.seconds * (os.cpu_count() or 1))
    return (
        f"CPU per request: server {fmt_time(load.server_cpu / load.count).strip()}, client "
        f"{fmt_time(client).strip()}; the cores were {busy:.0%} busy with both"
    )


def ratio(mine: Outcome, theirs: Outcome) -> str:
    def of(a: float | None, b: float | None) -> str:
        return f"{a / b:5.2f}x" if a is not None and b else "    -"

    every = [o.load.reads + o.load.writes for o in (mine, theirs)]
    parts = [f"req/s {of(mine.load.rate, theirs.load.rate)}"]
    for p, name in ((0.5, "p50"), (0.99, "p99")):
        parts.append(f"{name} {of(percentile(every[0], p), percentile(every[1], p))}")
    for kind in ("reads", "writes"):
        mine_latencies, their_latencies = getattr(mine.load, kind), getattr(theirs.load, kind)
        parts.append(
            f"{kind} p50 {of(percentile(mine_latencies, 0.5), percentile(their_latencies, 0.5))}"
        )
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests of the load")
    parser.add_argument("--concurrency", type=int, default=50, help="requests at once")
    parser.add_argument("--users", type=int, default=20, help="people who sign up")
    parser.add_argument(
        "--workers", default="2,4", help="uvicorn worker counts, comma-separated (default 2,4)"
    )
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temp folder goes")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 200 requests, 10 at once, 2 workers"
    )
    args = parser.parse_args()
    requests, concurrency, people = args.requests, args.concurrency, args.users
    counts = tuple(int(part) for part in args.workers.split(",") if part.strip())
    if args.quick:
        requests, concurrency, people, counts = 200, 10, min(people, 5), (2,)
    root = Path(tempfile.mkdtemp(prefix="hutch-app-", dir=args.dir)).resolve()
    failed = False
    try:
        print(
            f"the platform application, file:// vs sqlite:// (sqlite3 {sqlite3.sqlite_version}), "
            f"{', '.join(map(str, counts))} uvicorn workers"
        )
        print(
            f"machine: {cpu_model()}, {os.cpu_count()} cores; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}"
        )
        print(f"temp folder: {root} on {file_system(root)}")
        print(
            f"{people} people sign up; then {requests:,} requests, {concurrency} at once, half "
            f"writes ({STATUS_SHARE:.0%} of them status changes), over loopback HTTP"
        )
        print()
        header = (
            f"{'config':13} {'req/s':>7} {'p50':>10} {'p99':>10} {'read p50':>10} "
            f"{'read p99':>10} {'write p50':>10} {'write p99':>10} {'errors':>6} {'lost':>5} "
            f"{'set-up':>9}"
        )
        print(header)
        print("-" * len(header))
        outcomes: dict[tuple[str, int], Outcome] = {}
        for workers in counts:
            for backend in ("file", "sqlite"):
                say(f"{backend}:// with {workers} workers")
                outcome = run(backend, workers, root, people, requests, concurrency)
                outcomes[backend, workers] = outcome
                print(row(outcome), flush=True)
        print()
        for outcome in outcomes.values():
            load = outcome.load
            print(
                f"{outcome.label}: {len(load.resources):,} resources and {load.status_changes:,} "
                f"status changes acknowledged; errors: {len(load.errors)}; lost: "
                f"{len(outcome.lost)}"
            )
            if load.seconds:
                before = outcome.busy_before
                average = "unknown" if before is None else f"{before:.2f}"
                print(f"  {cpu_use(load)}; 1-minute load average before it: {average}")
            for error in load.errors[:SHOWN]:
                print(f"  error {error}")
            for lost in outcome.lost[:SHOWN]:
                print(f"  lost {lost}")
            hidden = max(0, len(load.errors) - SHOWN) + max(0, len(outcome.lost) - SHOWN)
            if hidden:
                print(f"  ... and {hidden} more")
            failed = failed or bool(load.errors or outcome.lost)
        print()
        print("ratios (req/s: higher is better; latencies: lower is better)")
        for workers in counts:
            print(
                f"file/sqlite, {workers} workers: "
                f"{ratio(outcomes['file', workers], outcomes['sqlite', workers])}"
            )
        if len(counts) > 1:
            for backend in ("file", "sqlite"):
                print(
                    f"{counts[-1]}/{counts[0]} workers, {backend}://: "
                    f"{ratio(outcomes[backend, counts[-1]], outcomes[backend, counts[0]])}"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
