"""Integrity checks of a whole store (``hutch verify``): what holds, and the first problems.

Checked on a database opened read-only: what the backend keeps beside the
rows (index files, ids) agrees with them (:meth:`hutch.Persister.verify`);
for the models named (those of the plugins an application enables), every
relationship cell resolves, unique fields are unique, and every row fits its
model. Against a second store: each collection's canonical hash, and sampled
rows compared field by field.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence

import attrs

from hutch.cells import Row, same_json
from hutch.database import Database
from hutch.errors import HutchError, ValidationError
from hutch.models import Model, ModelSpec, Unique, spec_of
from hutch.persister import Snapshot
from hutch.relationships import Relationship
from hutch.serialise import from_row
from hutch.snapshots import VALUES, collection_hash, snapshot_of, values_hash

#: How many problems a report keeps (the count goes on past it).
MAX_PROBLEMS = 1000


@attrs.frozen
class CollectionCheck:
    """One collection (or the keyed values) as the report's table shows it."""

    name: str
    rows: int
    sha256: str
    other_rows: int | None = None  # in the store verified against, if any
    other_sha256: str | None = None

    @property
    def matches(self) -> bool | None:
        """Whether the two stores hold the same here (``None`` without a second store)."""
        return None if self.other_sha256 is None else self.sha256 == self.other_sha256


@attrs.define
class Report:
    """What ``verify`` found: a table of collections and the problems, first found first."""

    url: str
    against: str | None = None
    collections: list[CollectionCheck] = attrs.field(factory=list)
    problems: list[str] = attrs.field(factory=list)
    problem_count: int = 0
    sampled: int = 0

    @property
    def passed(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def verify(
    db: Database,
    *,
    models: Sequence[type[Model]] | None = None,
    against: Database | None = None,
    sample: int = 100,
    seed: int | None = None,
) -> Report:
    """Check ``db`` (and compare it with ``against``, sampling ``sample`` rows).

    ``models``: the models whose rules apply (``None``: every model ``db`` knows,
    and every relationship defined on it).
    """
    if sample < 0:
        raise HutchError(f"the sample size must be 0 or more, not {sample}")
    report = Report(db.url, None if against is None else against.url)
    snapshot = snapshot_of(db)
    other = None if against is None else snapshot_of(against)
    _table(report, snapshot, other)
    for problem in _problems(db, snapshot, models):
        report.add(problem)
    if against is not None and other is not None:
        for problem in _differences(report, snapshot, other, sample, random.Random(seed)):
            report.add(problem)
    return report


def _table(report: Report, snapshot: Snapshot, other: Snapshot | None) -> None:
    names = sorted(set(snapshot.tables) | set(other.tables if other else ()))
    for name in names:
        rows = snapshot.tables.get(name, {})
        theirs = None if other is None else other.tables.get(name, {})
        report.collections.append(
            CollectionCheck(
                name,
                len(rows),
                collection_hash(rows),
                None if theirs is None else len(theirs),
                None if theirs is None else collection_hash(theirs),
            )
        )
    report.collections.append(
        CollectionCheck(
            VALUES,
            len(snapshot.values),
            values_hash(snapshot.values),
            None if other is None else len(other.values),
            None if other is None else values_hash(other.values),
        )
    )


def _problems(
    db: Database, snapshot: Snapshot, models: Sequence[type[Model]] | None
) -> Iterator[str]:
    if models is None:
        links = {r: db.relationships.definition(r) for r in db.relationships.relationship_ids()}
        models = db.models.models()
    else:
        for model in models:  # (its indexes check its unique fields)
            db.models.register(model)
        links = {
            spec.relationship_id(relation): Relationship(
                spec.collection, relation.target, relation.field
            )
            for spec in map(spec_of, models)
            for relation in spec.relations
        }
    yield from _orphans(links, snapshot)
    yield from _misfits(models, snapshot)
    yield from _duplicates(db, models)
    try:
        yield from db.backend.verify()
    except HutchError as error:
        yield f"the {db.config.url.scheme} backend could not check its files: {error}"


def _orphans(links: Mapping[str, Relationship], snapshot: Snapshot) -> Iterator[str]:
    """Relationship cells that name no row of the collection they point into."""
    for relationship_id, link in sorted(links.items()):
        remote = snapshot.tables.get(link.remote, {})
        for row_id, row in sorted(snapshot.tables.get(link.local, {}).items()):
            target = row.get(link.on)
            if target is not None and (type(target) is not str or target not in remote):
                yield (
                    f"{link.local} {row_id!r}: {link.on} is {target!r}, which is no row of "
                    f"{link.remote} (relationship {relationship_id}); restore the missing row "
                    "or correct the cell"
                )


def _misfits(models: Sequence[type[Model]], snapshot: Snapshot) -> Iterator[str]:
    """Rows of a modelled collection that do not fit the model."""
    for model in models:
        collection = spec_of(model).collection
        for row_id, row in sorted(snapshot.tables.get(collection, {}).items()):
            try:
                from_row(model, row_id, row)
            except ValidationError as error:
                yield f"{collection} {row_id!r}: {error}"


def _duplicates(db: Database, models: Sequence[type[Model]]) -> Iterator[str]:
    """Values of a unique field that several rows share, and values its key refuses."""
    indexes = db.indexes
    for spec in map(spec_of, models):
        for unique in spec.unique:
            if unique.key is not None:
                yield from _refused_keys(db, spec, unique)
            index_id = spec.unique_index_id(unique)
            for key in indexes.slice_ids(index_id):
                holders = indexes.slice_row_ids(index_id, key)
                if key is not None and len(holders) > 1:
                    shown = "one value" if unique.field in spec.secret else repr(key)
                    yield (
                        f"{spec.collection}.{unique.field} must be unique, and the rows "
                        f"{', '.join(map(repr, sorted(holders)))} share {shown}; change or "
                        "delete all but one"
                    )


def _refused_keys(db: Database, spec: ModelSpec, unique: Unique) -> Iterator[str]:
    """Rows whose unique field the key refuses (stored before the rule refused it): no
    other row can be told apart from them, and an import would reject them."""
    assert unique.key is not None
    with db.store.lock:
        values = sorted(
            (row_id, row[unique.field])
            for row_id, row in db.store.rows_of(spec.collection).items()
            if row.get(unique.field) is not None
        )
    for row_id, value in values:
        try:
            unique.key(value)
        except ValidationError as error:
            why = "" if unique.field in spec.secret else f" ({error})"
            yield (
                f"{spec.collection} {row_id!r}: {unique.field} is refused by the rule that "
                f"keeps it unique{why}; correct it"
            )


def _differences(
    report: Report, snapshot: Snapshot, other: Snapshot, sample: int, rng: random.Random
) -> Iterator[str]:
    """Collections whose hashes differ, and sampled rows compared cell by cell."""
    for check in report.collections:
        if check.matches is False:
            yield (
                f"{check.name} differs: {check.rows} rows here, {check.other_rows} in "
                f"{report.against} (hash {check.sha256[:12]} here, "
                f"{(check.other_sha256 or '')[:12]} there)"
            )
    keys = [(name, row_id) for name, rows in snapshot.tables.items() for row_id in rows]
    keys += [
        (name, row_id)
        for name, rows in other.tables.items()
        for row_id in rows
        if row_id not in snapshot.tables.get(name, {})
    ]
    keys.sort()
    chosen = rng.sample(keys, min(sample, len(keys)))
    report.sampled = len(chosen)
    for name, row_id in sorted(chosen):
        yield from _compare(
            name,
            row_id,
            snapshot.tables.get(name, {}).get(row_id),
            other.tables.get(name, {}).get(row_id),
            report.against or "",
        )


def _compare(
    name: str, row_id: str, mine: Row | None, theirs: Row | None, there: str
) -> Iterator[str]:
    if mine is None or theirs is None:
        missing = "here" if mine is None else f"in {there}"
        yield f"{name} {row_id!r} is missing {missing}"
        return
    for field in sorted(set(mine) | set(theirs)):
        if field not in mine or field not in theirs:
            where = "here" if field not in mine else f"in {there}"
            yield f"{name} {row_id!r}: the field {field!r} is missing {where}"
        elif not same_json(mine[field], theirs[field]):
            yield f"{name} {row_id!r}: the field {field!r} differs from {there}"
