"""What Indexes and Relationships share: named slice indexes that a store keeps current."""

from __future__ import annotations

from hutch.errors import DefinitionError
from hutch.slices import SliceIndex
from hutch.store import Store


class Definitions:
    """A registry of named :class:`~hutch.slices.SliceIndex` objects fed by one store."""

    #: How the definitions are called in messages, and how they are defined.
    kind = "definition"
    define_call = "define"

    def __init__(self, store: Store) -> None:
        self._store = store
        self._defined: dict[str, SliceIndex] = {}

    def delete(self, name: str) -> None:
        """Forget a definition; deleting an unknown one does nothing."""
        with self._store.lock:
            old = self._defined.pop(name, None) if isinstance(name, str) else None
            if old is not None:
                self._store.remove_consumer(old)

    def __contains__(self, name: object) -> bool:
        return self.defined(name) is not None

    def defined(self, name: object) -> SliceIndex | None:
        """The definition called ``name``, if there is one (a name of any type: no error)."""
        return self._defined.get(name) if isinstance(name, str) else None

    def ids(self) -> list[str]:
        """The defined names, sorted."""
        return sorted(self._defined)

    def _check_name(self, name: object) -> str:
        if not isinstance(name, str) or not name:
            raise DefinitionError(f"a {self.kind} id is a non-empty string, not {name!r}")
        return name

    def _check_definable(self, name: str) -> None:
        """Raise unless ``name`` may be defined now: outside a transaction, on an open store."""
        if self._store.in_transaction:
            raise DefinitionError(
                f"define {self.kind} {name!r} outside a transaction, so that it cannot "
                "see writes that may yet roll back"
            )
        self._store.check_open()

    def _install(self, name: str, index: SliceIndex) -> None:
        """Build ``index`` from the current rows and put it in place of any old one."""
        with self._store.lock:
            self._check_definable(name)
            index.build(self._store.rows_of(index.table_id))
            self.delete(name)
            self._defined[name] = index
            self._store.add_consumer(index)

    def _get(self, name: str) -> SliceIndex:
        self._store.check_open()
        index = self.defined(name)
        if index is None:
            known = ", ".join(sorted(self._defined)) or "none"
            raise DefinitionError(
                f"no {self.kind} {name!r}; define it with db.{self.define_call}(...) "
                f"(defined: {known})"
            )
        return index
