"""``hutch.open`` and the ``Database`` it returns: a store, its indexes and relationships."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

import attrs
import pluggy

from hutch.changes import Changes
from hutch.config import (
    URL,
    check_durability,
    check_lock_timeout,
    parse_collections,
    parse_url,
    redact_text,
)
from hutch.errors import (
    ConfigError,
    DefinitionError,
    HutchError,
    PluginError,
    ReadOnlyStorage,
    StorageError,
    UnknownBackend,
)
from hutch.follower import Follower
from hutch.ids import check_table_id
from hutch.indexes import Indexes
from hutch.migrations import Migrated, recorded_version
from hutch.mirrors import Mirror
from hutch.models import Model
from hutch.persister import BackendConfig, Capabilities, Persister
from hutch.plugin_manager import AUTOLOAD_OFF, autoload_enabled, backends, make_manager
from hutch.registry import ModelRegistry
from hutch.relationships import Relationship, Relationships
from hutch.repository import Repository
from hutch.store import Store

M = TypeVar("M", bound=Model)
R = TypeVar("R", bound=Repository[Any])
#: Seconds: well above the longest legitimate hold of a lock (a checkpoint of a big folder).
DEFAULT_LOCK_TIMEOUT = 30.0


def open(
    url: str | os.PathLike[str] | None = None,
    *,
    collections: Mapping[str, Any] | None = None,
    durability: str = "commit",
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    read_only: bool = False,
    follow: bool = True,
    mirrors: Iterable[str | os.PathLike[str]] = (),
    plugins: Iterable[object] = (),
    migrate: bool = True,
    **options: Any,
) -> Database:
    """Open the store at ``url`` with the backend its scheme names.

    - ``url``: a URL (``memory://``, ``file:///srv/data``, ``sqlite:///app.db``,
      ``postgresql://...``) or a bare path (a ``file`` URL); ``None`` means
      ``$HUTCH_URL``, else ``./data``.
    - ``collections``: per-collection settings.
    - ``durability``: ``"commit"``, ``"batch"`` or ``"none"``.
    - ``lock_timeout``: the longest wait in seconds for a lock another process
      holds (then :class:`~hutch.LockTimeout`).
    - ``read_only=True``: open a durable store writing nothing (writes raise
      :class:`~hutch.ReadOnlyStorage`).
    - ``follow=False``: no thread takes other processes' commits in within 50 ms
      (then only transactions and ``db.refresh()`` do).
    - ``mirrors``: URLs of other backends that receive every commit (see
      :mod:`hutch.mirrors`).
    - ``plugins``: plugins added to those the ``hutch`` entry-point group loads
      on every open: names of installed ones (the domain plugins
      ``"platform"`` and ``"auth"`` act only when named), and modules or
      objects with hook implementations.
    - ``migrate=False``: leave the migrations of models to
      :meth:`Database.migrate` (else they run as each model registers: see
      :mod:`hutch.migrations`).
    - any other keyword: an option for the backend, which rejects the ones it
      does not know.
    """
    parsed = parse_url(url)
    config = BackendConfig(
        url=parsed,
        durability=check_durability(durability),
        collections=parse_collections(collections),
        lock_timeout=check_lock_timeout(lock_timeout),
        read_only=_check_flag("read_only", read_only),
        options=dict(options),
    )
    mirrors = _check_mirrors(mirrors)
    if config.read_only and mirrors:
        raise ConfigError(
            "read_only=True writes nothing, and a mirror takes every commit: open with one "
            "of them, not both"
        )
    manager = make_manager(plugins)
    persister = _persister(manager, config)
    opened: list[Persister] = [persister]
    try:
        mirror_list = []
        for mirror_url in mirrors:
            mirror_config = attrs.evolve(config, url=parse_url(mirror_url), options={})
            mirror_list.append(Mirror(mirror_config.url, _persister(manager, mirror_config)))
            opened.append(mirror_list[-1].persister)
        return Database(
            config,
            persister,
            manager,
            mirror_list,
            follow=_check_flag("follow", follow),
            migrate=_check_flag("migrate", migrate),
        )
    except BaseException:
        for each in opened:
            with contextlib.suppress(Exception):  # keep the error that matters: opening's
                each.close()
        raise


def _check_mirrors(mirrors: object) -> list[str | os.PathLike[str]]:
    if isinstance(mirrors, str | bytes | os.PathLike) or not isinstance(mirrors, Iterable):
        raise ConfigError(
            f"mirrors takes a list of URLs, such as mirrors=['sqlite:///mirror.db'], "
            f"not {redact_text(repr(mirrors))}"
        )
    return list(mirrors)


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, not {value!r}")
    return value


def _persister(manager: pluggy.PluginManager, config: BackendConfig) -> Persister:
    """The persister the plugins provide for ``config.url``'s scheme."""
    factory = backends(manager).get(config.url.scheme)
    if factory is None:
        raise _unknown_scheme(config.url, manager)
    if config.read_only and not _capabilities(factory).read_only:
        raise ConfigError(
            f"the {config.url.scheme} backend cannot open {config.url.redacted()} read-only "
            "(read_only=True is for durable backends that support it: file, jsonl, sqlite)"
        )
    persister = factory(config)
    if not isinstance(persister, Persister):
        raise PluginError(
            f"the backend for {config.url.scheme!r} returned {persister!r}, which is not a "
            "hutch.Persister; its factory must return a Persister subclass instance"
        )
    return persister


def capabilities_of(url: URL, plugins: Iterable[object] = ()) -> Capabilities:
    """What the backend of ``url`` promises, before anything is opened."""
    manager = make_manager(plugins)
    factory = backends(manager).get(url.scheme)
    if factory is None:
        raise _unknown_scheme(url, manager)
    return _capabilities(factory)


def _capabilities(factory: object) -> Capabilities:
    """What a backend's factory promises (a Persister subclass says it in ``capabilities``)."""
    found = getattr(factory, "capabilities", None)
    return found if isinstance(found, Capabilities) else Capabilities()


class Database:
    """An open store: ``db.store``, ``db.indexes``, ``db.relationships``; close it when done."""

    def __init__(
        self,
        config: BackendConfig,
        persister: Persister,
        plugins: pluggy.PluginManager,
        mirrors: Iterable[Mirror] = (),
        *,
        follow: bool = True,
        migrate: bool = True,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self._persister = persister
        try:
            snapshot = persister.load()
        except HutchError:
            raise
        except Exception as error:
            raise StorageError(
                f"could not load {config.url.redacted()}: {type(error).__name__}: {error}"
            ) from error
        self.store = Store(persister, snapshot, read_only=config.read_only)
        #: The mirrors, each with its ``error`` and whether it is ``in_step``.
        self.mirrors = list(mirrors)
        self.indexes = Indexes(self.store)
        self.relationships = Relationships(self.store, self._describe_relationship)
        self.models = ModelRegistry(self, migrate=migrate)
        plugins.hook.hutch_register_models(register=self.models.register)
        self.resync_mirrors()
        if self.mirrors:
            self.store.add_listener(self._to_mirrors)
        self._follower: Follower | None = None
        if follow and persister.capabilities.change_feed:
            self._follower = Follower(self.store, persister, self.url)

    @overload
    def repo(self, model: type[M]) -> Repository[M]: ...

    @overload
    def repo(self, model: type[M], kind: type[R]) -> R: ...

    def repo(self, model: type[M], kind: type[R] | None = None) -> Repository[M] | R:
        """The repository of a model: typed create, get, find, update and delete.

        A model may name its own repository class (``__repository__``) with
        domain methods; pass that class as ``kind`` to have it checked and typed:
        ``db.repo(User, UserRepository).find_by_email(...)``.
        """
        repo = self.models.repo(model)
        if kind is not None and not isinstance(repo, kind):
            raise DefinitionError(
                f"db.repo({model.__qualname__}) is a {type(repo).__qualname__}, not a "
                f"{kind.__qualname__}; does the model name it in __repository__, and is no "
                f"other model registered for {repo.collection!r}?"
            )
        return repo

    def migrate(self, *models: type[Model], dry_run: bool = False) -> list[Migrated]:
        """Run the pending migrations of ``models`` (registering them), or of every registered
        model; return what ran, in order (with ``dry_run=True``, what would run: nothing is
        written, and no model registered). Those of a collection run in one transaction,
        once, whoever else opens the store meanwhile (see :mod:`hutch.migrations`)."""
        if not dry_run:
            self._refuse_read_only("migrate")
        return self.models.migrate(models, dry_run=dry_run)

    def schema_version(self, collection: str) -> int:
        """The schema version the store records for ``collection`` (1: never migrated)."""
        return recorded_version(self.store, check_table_id(collection))

    @property
    def url(self) -> str:
        """The URL the database was opened with (any password hidden)."""
        return self.config.url.redacted()

    @property
    def capabilities(self) -> Capabilities:
        """What the backend can do."""
        return self._persister.capabilities

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self.store.closed

    @property
    def backend(self) -> Persister:
        """The backend's persister, for what is particular to it (see its documentation)."""
        return self._persister

    def refresh(self) -> None:
        """Take in what other processes or machines committed since this one last looked."""
        self.store.refresh()

    def reindex(self) -> None:
        """Rebuild the backend's on-disk indexes from its records (a no-op where it has none)."""
        self._outside_transactions("reindex")
        self._refuse_read_only("reindex")
        self.store.check_open()
        self._persister.reindex()  # it takes the backend's locks, which come before the store's

    def compact(self) -> None:
        """Drop superseded history now, so that deleted and overwritten values leave the disk.

        Backends keep old values for a bounded time anyway (see each one's
        format document); call this when one must be gone at once (a user's
        account deleted, a token revoked). Other processes keep working.
        """
        self._outside_transactions("compact")
        self._refuse_read_only("compact")
        self.store.check_open()
        self._persister.compact()

    def _outside_transactions(self, method: str) -> None:
        """Refuse, rather than wait forever for the write lock this thread's transaction holds."""
        if self.store.owns_transaction():
            raise HutchError(
                f"db.{method}() cannot run inside a transaction: it waits for the write lock "
                "the transaction holds. Call it after the `with ...transaction():` block ends"
            )

    def _refuse_read_only(self, method: str) -> None:
        if self.config.read_only:
            raise ReadOnlyStorage(
                f"db.{method}() writes, and {self.url} was opened with read_only=True; open "
                "it again without read_only"
            )

    def resync_mirrors(self) -> bool:
        """Bring every mirror back in step with the primary; return whether all are."""
        return all([mirror.resync(self.store) for mirror in self.mirrors])

    def _describe_relationship(self, relationship_id: str, relationship: Relationship) -> None:
        try:
            self._persister.describe_relationship(relationship_id, relationship)
        except HutchError:
            raise
        except Exception as error:
            raise StorageError(
                f"the backend of {self.url} could not record relationship {relationship_id!r} "
                f"({type(error).__name__}: {error}); it was not defined"
            ) from error
        for mirror in self.mirrors:
            mirror.describe(relationship_id, relationship)

    def _to_mirrors(self, changes: Changes) -> None:
        for mirror in self.mirrors:
            mirror.take(changes)

    def close(self) -> None:
        """Close the backend and the mirrors; closing twice does nothing."""
        if self.store.closed:
            return
        if self._follower is not None and not self.store.owns_transaction():
            self._follower.stop()  # (inside a transaction the close below refuses)
        try:
            self.store.close()  # inside a transaction this refuses, and nothing closes
        finally:
            if self.store.closed:
                for mirror in self.mirrors:
                    with contextlib.suppress(Exception):
                        mirror.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<hutch.Database {self.url!r} {state}>"


def _unknown_scheme(url: URL, manager: pluggy.PluginManager) -> UnknownBackend:
    installed = ", ".join(sorted(backends(manager))) or "none"
    hint = (
        "install the plugin that provides it, or pass it in plugins=[...]"
        if autoload_enabled()
        else f"plugin autoloading is off ({AUTOLOAD_OFF} is set): pass plugins=[...]"
    )
    return UnknownBackend(
        f"no backend for the scheme {url.scheme!r} of {url.redacted()!r}; "
        f"installed schemes: {installed}; {hint}"
    )
