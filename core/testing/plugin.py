"""The pytest plugin of the parity suite: options, a marker, fixtures; no tests.

Registered through the ``pytest11`` entry point, so every pytest run in an
environment where hutch is installed loads it. It costs nothing there: it adds
the options ``--hutch-url``, ``--hutch-option`` and ``--hutch-plugin``, the
marker ``hutch_requires`` and some fixtures that do nothing unless a test asks
for them. The parity tests live in the ``test_parity_*`` modules of
:mod:`hutch.testing` and run only when asked::

    pytest --pyargs hutch.testing --hutch-url file:///tmp/parity
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

import hutch
from hutch.config import parse_url
from hutch.errors import HutchError
from hutch.persister import OpenStores
from hutch.testing import hooks

#: What each capability promises, for the reason a test that needs it is skipped.
CAPABILITY_NAMES: dict[str, str] = {
    "durable": "a commit survives closing the database and opening its URL again",
    "multi_process": "several processes on one machine may open the same store at once",
    "multi_node": "several machines may open the same store at once",
    "change_feed": "Database.refresh() takes in what another open database committed",
    "lazy_loading": "rows may be fetched on demand rather than all at open",
}

F = TypeVar("F", bound=Callable[..., Any])

_RUN = pytest.StashKey[str]()
_PLUGINS = pytest.StashKey[list[object]]()


def requires(*capabilities: str) -> pytest.MarkDecorator:
    """``@requires("durable")``: the same as ``@pytest.mark.hutch_requires("durable")``."""
    _check_names(capabilities, "requires(...)")
    return pytest.mark.hutch_requires(*capabilities)


# -- options and configuration -----------------------------------------------------------------


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hutch", "hutch parity suite (pytest --pyargs hutch.testing)")
    group.addoption(
        "--hutch-url",
        metavar="URL",
        default=None,
        help="the backend to test: memory://, file:///tmp/parity, ...; each test opens a fresh "
        "store derived from it (a sub-folder, or a sibling file for a path like app.db)",
    )
    group.addoption(
        "--hutch-option",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a backend option passed to hutch.open (VALUE is read as JSON if it parses, "
        "else as text); repeatable",
    )
    group.addoption(
        "--hutch-mirror",
        metavar="URL",
        default=None,
        help="also mirror every store to a fresh store derived from URL, and check after each "
        "test that the mirror, opened on its own, holds exactly what the store holds",
    )
    group.addoption(
        "--hutch-plugin",
        metavar="MODULE_OR_FILE",
        action="append",
        default=[],
        help="a hutch plugin to pass to hutch.open(plugins=...): a module name or a .py file, "
        "optionally with :attribute for a plugin object in it (examples/dict_backend.py:plugin); "
        "for a backend not installed through the 'hutch' entry-point group; repeatable",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "hutch_requires(*capabilities): the hutch capabilities a parity test needs "
        f"({', '.join(CAPABILITY_NAMES)}); a backend that lacks one skips it, saying why",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    url = config.getoption("--hutch-url", None)
    return None if url is None else f"hutch parity suite: --hutch-url {url}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("hutch_requires"):
        _check_names(marker.args, f"{item.nodeid}: hutch_requires")
        if "hutch_open" not in getattr(item, "fixturenames", ()):
            pytest.fail(
                f"{item.nodeid} is marked hutch_requires but uses no hutch fixture; the "
                "capabilities are checked when it opens a store through hutch_open, hutch_db "
                "or hutch_store",
                pytrace=False,
            )


def _check_names(names: tuple[object, ...], where: str) -> None:
    unknown = [name for name in names if name not in CAPABILITY_NAMES]
    if unknown or not names:
        raise pytest.UsageError(
            f"{where} names {unknown or 'no capability'}; the capabilities are "
            f"{', '.join(CAPABILITY_NAMES)}"
        )


# -- fresh stores ------------------------------------------------------------------------------


def default_fresh_url(base_url: str, name: str) -> str | None:
    """The default rule for a fresh store called ``name`` under ``base_url``, or ``None``.

    ``memory://`` stays ``memory://`` (every open is fresh). A URL naming a local
    path gets a sub-folder (``file:///tmp/p`` -> ``file:///tmp/p/<name>``), or a
    sibling file if its last segment has a suffix (``sqlite:////tmp/app.db`` ->
    ``sqlite:////tmp/app-<name>.db``). A URL with a host, a query or a fragment
    (``postgresql://...``) has no default: implement ``pytest_hutch_fresh_url``.
    """
    url = parse_url(base_url)
    if url.scheme == "memory":
        return "memory://"
    raw = url.raw
    if "?" in raw or "#" in raw:
        return None
    if not url.bare_path and url.rest.startswith("//"):
        host = url.rest[2:].partition("/")[0]
        if host not in ("", "localhost"):
            return None
    base = raw.rstrip("/")
    head, slash, last = base.rpartition("/")
    if not last or last in (".", ".."):
        return f"{base}/{name}"
    stem, dot, suffix = last.rpartition(".")
    if dot and stem:
        return f"{head}{slash}{stem}-{name}.{suffix}"
    return f"{base}/{name}"


def _run_token(config: pytest.Config) -> str:
    if _RUN not in config.stash:
        config.stash[_RUN] = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    return config.stash[_RUN]


def _store_name(request: pytest.FixtureRequest, label: str = "") -> str:
    node = request.node
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", node.name).strip("-")[:48] or "test"
    digest = hashlib.sha1(node.nodeid.encode()).hexdigest()[:6]
    extra = f"-{label}" if label else ""
    return f"{slug}-{digest}{extra}-{_run_token(request.config)}"


def _fresh_url(request: pytest.FixtureRequest, base_url: str, label: str = "") -> str:
    name = _store_name(request, label)
    found = request.config.hook.pytest_hutch_fresh_url(base_url=base_url, name=name)
    url = found if found is not None else default_fresh_url(base_url, name)
    if found is None and url is not None and parse_url(url).scheme != "memory":
        with contextlib.suppress(HutchError, OSError):  # the folder --hutch-url names
            parse_url(url).file_path().parent.mkdir(parents=True, exist_ok=True)
    if url is None:
        pytest.fail(
            f"the parity suite cannot derive a fresh store from --hutch-url {base_url}; "
            "implement the hook pytest_hutch_fresh_url(base_url, name) in a conftest.py or a "
            "plugin loaded with -p (see docs/testing-backends.md)",
            pytrace=False,
        )
    return str(url)


def _plugins(config: pytest.Config) -> list[object]:
    if _PLUGINS not in config.stash:
        config.stash[_PLUGINS] = [_import(spec) for spec in config.getoption("--hutch-plugin")]
    return config.stash[_PLUGINS]


def _import(given: str) -> object:
    """Import ``module``, ``path/to/file.py`` or either with ``:attribute`` (a plugin object)."""
    spec, colon, attribute = given.rpartition(":")
    if not (colon and attribute.isidentifier()):
        spec, attribute = given, ""
    module = _import_module(spec)
    if not attribute:
        return module
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise pytest.UsageError(f"--hutch-plugin {given}: {spec} has no {attribute!r}") from None


def _import_module(spec: str) -> object:
    path = Path(spec)
    if spec.endswith(".py") or os.sep in spec:
        name = "hutch_testing_plugin_" + re.sub(r"\W", "_", path.stem)
        if name in sys.modules:
            return sys.modules[name]
        found = importlib.util.spec_from_file_location(name, path.resolve())
        if found is None or found.loader is None or not path.is_file():
            raise pytest.UsageError(f"--hutch-plugin {spec}: no such Python file")
        module = importlib.util.module_from_spec(found)
        sys.modules[name] = module
        found.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(spec)
    except ImportError as error:
        raise pytest.UsageError(f"--hutch-plugin {spec}: cannot import it: {error}") from error


def _options(config: pytest.Config) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in config.getoption("--hutch-option"):
        key, equals, text = item.partition("=")
        if not equals or not key.isidentifier():
            raise pytest.UsageError(f"--hutch-option {item!r}: write KEY=VALUE")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options


class Opener:
    """Opens the fresh store of one test (the ``hutch_open`` fixture), and closes it after.

    ``hutch_open()`` opens the test's store, ``hutch_open()`` again (after
    ``close()``) reopens the same URL, and ``hutch_open(hutch_open.fresh_url("b"))``
    opens a second fresh store. Keyword arguments go to ``hutch.open`` after the
    ``--hutch-option`` ones.
    """

    def __init__(self, request: pytest.FixtureRequest, base_url: str) -> None:
        self._request = request
        self.base_url = base_url
        self.url = _fresh_url(request, base_url)
        self.options = _options(request.config)
        self.plugins = _plugins(request.config)
        self.opened: list[hutch.Database] = []
        self._seen: set[str] = set()
        self.mirror_base: str | None = request.config.getoption("--hutch-mirror")
        self._mirrors: dict[str, str] = {}  # store URL -> its mirror's URL
        self._required = [
            name for marker in request.node.iter_markers("hutch_requires") for name in marker.args
        ]

    @property
    def scheme(self) -> str:
        """The URL scheme of the backend under test."""
        return parse_url(self.base_url).scheme

    def fresh_url(self, label: str) -> str:
        """Another fresh store for this test, told apart by ``label``."""
        return _fresh_url(self._request, self.base_url, re.sub(r"[^A-Za-z0-9_-]", "-", label))

    def __call__(self, url: str | None = None, **kwargs: Any) -> hutch.Database:
        target = self.url if url is None else url
        if self.mirror_base and "mirrors" not in kwargs:
            if target not in self._mirrors:  # (a reopen keeps its mirror)
                label = f"mirror{len(self._mirrors)}"
                self._mirrors[target] = _fresh_url(self._request, self.mirror_base, label)
            kwargs["mirrors"] = [self._mirrors[target]]
        db = hutch.open(target, plugins=self.plugins, **(self.options | kwargs))
        self.opened.append(db)
        self._check_capabilities(db)
        if target not in self._seen:
            self._seen.add(target)
            self._check_empty(db, target)
        return db

    def _check_capabilities(self, db: hutch.Database) -> None:
        for name in self._required:
            if not getattr(db.capabilities, name):
                db.close()
                pytest.skip(f"the {self.scheme} backend lacks {name}: {CAPABILITY_NAMES[name]}")

    def _check_empty(self, db: hutch.Database, url: str) -> None:
        tables, values = db.store.get_table_ids(), db.store.get_values()
        if tables or values:
            db.close()
            pytest.fail(
                f"the fresh store {url} is not empty (tables {tables}, values {sorted(values)}); "
                "each parity test needs an empty store: point --hutch-url somewhere new, or fix "
                "pytest_hutch_fresh_url",
                pytrace=False,
            )

    def compare_mirrors(self) -> None:
        """Fail unless every open store's mirror, opened on its own, holds what the store holds."""
        for db in self.opened:
            if db.closed or db.store.in_transaction or not db.mirrors:
                continue
            for mirror in db.mirrors:
                with (
                    OpenStores.allow_several(),  # as another process would open it
                    hutch.open(mirror.url.raw, plugins=self.plugins, follow=False) as alone,
                ):
                    ours, theirs = _content(db), _content(alone)
                if ours != theirs:
                    pytest.fail(
                        f"the mirror {mirror.url} differs from its store: {theirs!r} "
                        f"against {ours!r} (mirror error: {mirror.error!r})",
                        pytrace=False,
                    )

    def close_all(self) -> None:
        """Close every database this test opened (closing twice does nothing)."""
        errors: list[BaseException] = []
        for db in reversed(self.opened):
            try:
                db.close()
            except HutchError as error:  # inside a transaction left open by a failed test
                errors.append(error)
        self.opened.clear()
        if errors:
            raise errors[0]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def hutch_base_url(request: pytest.FixtureRequest) -> str:
    """The ``--hutch-url`` given on the command line; a test that needs it skips without it."""
    url = request.config.getoption("--hutch-url")
    if not url:
        pytest.skip("no backend to test: give --hutch-url URL (e.g. --hutch-url memory://)")
    return str(url)


@pytest.fixture
def hutch_open(request: pytest.FixtureRequest, hutch_base_url: str) -> Iterator[Opener]:
    """Open this test's fresh store (see :class:`Opener`); everything opened closes after."""
    opener = Opener(request, hutch_base_url)
    yield opener
    try:
        opener.compare_mirrors()
    finally:
        opener.close_all()


@pytest.fixture
def hutch_fresh_url(hutch_open: Opener) -> str:
    """The URL of this test's fresh, empty store."""
    return hutch_open.url


@pytest.fixture
def hutch_db(hutch_open: Opener) -> hutch.Database:
    """This test's fresh store, open."""
    return hutch_open()


@pytest.fixture
def hutch_store(hutch_db: hutch.Database) -> hutch.Store:
    """The store of :func:`hutch_db`."""
    return hutch_db.store


def _content(db: hutch.Database) -> bytes:
    """A database's rows and values, as bytes that tell 1, 1.0 and True apart."""
    tables = {t: db.store.get_table(t) for t in db.store.get_table_ids()}
    return orjson.dumps([tables, db.store.get_values()], option=orjson.OPT_SORT_KEYS)
