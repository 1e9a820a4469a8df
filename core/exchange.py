"""Export a snapshot to a folder of plain files, and read such a folder back, checked.

What ``hutch export`` and ``hutch import`` stand on. An export holds one file
per collection, ``<collection>.<format>``, and ``_values.json`` (the keyed
values, an object, when there are any):

* ``jsonl``: one object per line, ``{"id": row_id, ...cells}``, by row id;
* ``json``: one array of those objects, indented for people;
* ``csv``: a header ``id,<every cell id of the collection, sorted>``, then one
  record per row, by row id (RFC 4180: CRLF line ends, so a cell's own line
  breaks are quoted).

Objects list ``id`` first, then the cells; keys are sorted at every level, so
two exports of equal data are equal files. An export is written in a temporary
folder beside the one asked for (``.<name>.tmp-<random>``), synced, and renamed
to it: a crash leaves a whole export or none (and such a temporary folder is
never read as an export). It holds everything the store holds, so its files
are readable by their owner only, as are reject files.

CSV cells round-trip exactly by one rule. Reading: an empty cell is a cell
the row does not have; a cell whose text parses as JSON is that JSON value;
any other cell is its text. Writing follows from it: a number, bool, None,
list or object is written as its JSON text (``1.0`` stays a float, ``-0.0``
keeps its sign); a string as it is, unless it is empty or would parse as JSON
(``5``, `` true``, ``null``, ``[1]``, ``"x"``), in which case it is written
JSON-encoded (the string ``5`` is the cell ``"5"``). The ``id`` column holds
the row id as it is. Text that looks like JSON but does not parse (``[1,``)
is a string: a hand-edited CSV that breaks a list keeps its text.

A folder to read is untrusted. Only ``<collection>.jsonl|json|csv`` and
``_values.json`` are read (a UTF-8 byte order mark at the start is allowed);
hidden files (``.DS_Store``) are passed over, and anything else in it is an
:class:`ExchangeError` naming every stray entry: a misspelt file skipped
without a word would be data lost without a word. So is a symbolic link or anything but a regular
file, and a collection given twice (in two formats). Every row passes the
checks of a write (:func:`hutch.ids.check_row_id`,
:func:`hutch.cells.check_row`); what fails, and what cannot be parsed, is a
:class:`Reject` naming the file and line, and the rest is read. A file that
cannot be read as a whole (a broken JSON array, a CSV without an ``id``
column) is one Reject with ``line=None``: that collection is missing, the
others are not.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import orjson

from hutch import files
from hutch.cells import Row, check_row, check_value, may_hold_long_numbers
from hutch.errors import DefinitionError, HutchError, InvalidId, InvalidValue, ValidationError
from hutch.ids import RESERVED_CELL, check_cell_id, check_row_id, check_table_id, check_value_id
from hutch.models import Model, ModelSpec, Unique, spec_of
from hutch.persister import Snapshot
from hutch.serialise import from_row, stored
from hutch.slices import slice_key

FORMATS = ("jsonl", "json", "csv")
_BOM = b"\xef\xbb\xbf"
#: The file of the keyed values, in every format.
VALUES_FILE = "_values.json"

#: How much of a rejected line a :class:`Reject` keeps (and of its reason, which may quote it).
RAW_LIMIT = 1000
_ROW_ID_LIMIT = 200

_MISSING: Any = object()
#: What JSON text can start with (after whitespace, which it may also start with).
_JSON_START = frozenset(' \t\n\r{["-0123456789tfn')
_LONG_NUMBER = re.compile(r"[0-9]{19}").search
#: csv's default limit (128 KiB) would refuse a long text cell that an export wrote.
_CSV_FIELD_LIMIT = 2**31 - 1
_BUFFER = 1 << 20
#: The name of an export's folder before it is renamed to the one asked for.
_UNFINISHED = re.compile(r"\..*\.tmp-[0-9a-f]{16}").fullmatch


class ExchangeError(HutchError, ValueError):
    """An export folder or a reject file is refused: a folder not empty or holding stray
    files, a file that exists already. (What the disk refuses is a
    :class:`~hutch.StorageError`.)"""


def _clean(text: str, limit: int = RAW_LIMIT) -> str:
    """``text`` cut to ``limit`` characters and made writable as UTF-8 (lone surrogates
    from undecodable bytes are shown as escapes), so a Reject can always be written."""
    text = text[:limit]
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _clean_optional(text: str | None) -> str | None:
    return None if text is None else _clean(text, _ROW_ID_LIMIT)


@attrs.frozen(kw_only=True)
class Reject:
    """A row (or a file, or a value) that was not imported, and why.

    ``file`` is the export file's name, ``None`` when the check ran on a
    snapshot (:func:`check_models`). ``line`` is 1-based: the line in a jsonl
    or csv file (where a csv record starts), the record's position in a json
    array or ``_values.json``; ``None`` when the whole file was rejected or
    no file was read. ``raw`` is the rejected text, cut to :data:`RAW_LIMIT`.
    """

    file: str | None = None
    line: int | None = None
    collection: str | None = None
    row_id: str | None = attrs.field(default=None, converter=_clean_optional)
    reason: str = attrs.field(converter=_clean)
    raw: str = attrs.field(default="", converter=_clean)


# -- export -------------------------------------------------------------------------------------


def export(snapshot: Snapshot, folder: Path, fmt: str) -> list[Path]:
    """Write ``snapshot`` into ``folder`` as one ``<collection>.<fmt>`` per collection and
    ``_values.json``, and return the paths written.

    ``folder`` must be new or an empty folder, so that two exports never mix. The
    export is written in a temporary folder beside it, synced, and renamed to
    ``folder``, whose parent is then synced: a crash or a failure leaves a whole
    export or none.
    """
    write = _WRITERS.get(fmt)
    if write is None:
        raise ExchangeError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    tables = [check_table_id(name) for name in sorted(snapshot.tables) if snapshot.tables[name]]
    target = Path(os.path.abspath(folder))  # "." or "out/..": a folder with a name to rename
    _check_target(folder, target)
    try:
        files.make_folder(target.parent)
        temp = target.with_name(f".{target.name}.tmp-{secrets.token_hex(8)}")
        temp.mkdir(mode=0o700)
    except OSError as error:
        raise files.storage_error(error, "export to", folder) from error
    written: list[str] = []
    try:
        for table in tables:
            name = f"{table}.{fmt}"
            files.write_new(temp / name, partial(write, snapshot.tables[table]))
            written.append(name)
        if snapshot.values:
            data = orjson.dumps(snapshot.values, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
            files.write_new(temp / VALUES_FILE, lambda stream: stream.write(data + b"\n"))
            written.append(VALUES_FILE)
        files.sync_folder(temp)
        os.rename(temp, target)  # replaces an empty folder, never anything else
    except BaseException as error:
        shutil.rmtree(temp, ignore_errors=True)
        if isinstance(error, OSError):
            raise _export_error(error, folder, target) from error
        raise
    try:
        files.sync_folder(target.parent)
    except OSError as error:
        raise files.storage_error(error, "export to", folder) from error
    return [folder / name for name in written]


def _check_target(folder: Path, target: Path) -> None:
    """Refuse, before anything is written, a ``folder`` that is not new or an empty folder
    (the rename checks again, as something may appear meanwhile)."""
    if _UNFINISHED(target.name):
        raise ExchangeError(
            f"{folder} is named as hutch names an unfinished export; export to another name"
        )
    try:
        mode = os.lstat(target).st_mode
        present = sorted(os.listdir(target)) if stat.S_ISDIR(mode) else None
    except FileNotFoundError:
        return
    except OSError as error:
        raise files.storage_error(error, "export to", folder) from error
    if present is None:
        raise _not_a_folder(folder)
    if present:
        raise _not_empty(folder, present)


def _export_error(error: OSError, folder: Path, target: Path) -> HutchError:
    """What failed in an export: the folder was filled or replaced meanwhile, or the disk."""
    if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
        try:
            present = sorted(os.listdir(target))
        except OSError:
            present = ["something"]
        return _not_empty(folder, present)
    if error.errno == errno.ENOTDIR and os.path.lexists(target):
        return _not_a_folder(folder)
    return files.storage_error(error, "export to", folder)


def _not_empty(folder: Path, present: list[str]) -> ExchangeError:
    shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
    return ExchangeError(
        f"{folder} is not empty (it holds {shown}); export into a new or empty "
        "folder, so that files of two exports never mix"
    )


def _not_a_folder(folder: Path) -> ExchangeError:
    return ExchangeError(
        f"{folder} exists and is not a folder (a file or a link, say); export into a new "
        "or empty folder"
    )


def _jsonl_record(row_id: str, row: Row) -> bytes:
    """``{"id": row_id, ...row}`` on one line: one orjson call, ``id`` spliced in front."""
    body = orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
    head = b'{"id":' + orjson.dumps(row_id)
    return head + (b"," + body[1:] if len(body) > 2 else b"}")


def _json_record(row_id: str, row: Row) -> bytes:
    """:func:`_jsonl_record`, indented as an item of the top-level array."""
    body = orjson.dumps(row, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    head = b'{\n  "id": ' + orjson.dumps(row_id)
    record = head + (b"," + body[1:] if len(body) > 2 else b"\n}")
    return b"  " + record.replace(b"\n", b"\n  ")  # JSON strings hold no raw line break


def _write_jsonl(rows: Mapping[str, Row], stream: BinaryIO) -> None:
    for row_id in sorted(rows):
        stream.write(_jsonl_record(row_id, rows[row_id]))
        stream.write(b"\n")


def _write_json(rows: Mapping[str, Row], stream: BinaryIO) -> None:
    stream.write(b"[\n")
    for i, row_id in enumerate(sorted(rows)):
        if i:
            stream.write(b",\n")
        stream.write(_json_record(row_id, rows[row_id]))
    stream.write(b"\n]\n")


def _write_csv(rows: Mapping[str, Row], stream: BinaryIO) -> None:
    fields = sorted({cell for row in rows.values() for cell in row})
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    writer = csv.writer(text)  # CRLF line ends: a cell holding \r or \n is quoted
    writer.writerow([RESERVED_CELL, *fields])
    for row_id in sorted(rows):
        row = rows[row_id]
        writer.writerow([row_id, *[_csv_cell(row.get(field, _MISSING)) for field in fields]])
    text.flush()
    text.detach()  # the caller still syncs and closes the binary stream


_WRITERS: dict[str, Callable[[Mapping[str, Row], BinaryIO], None]] = {
    "jsonl": _write_jsonl,
    "json": _write_json,
    "csv": _write_csv,
}


def _csv_cell(value: Any) -> str:
    """A value as a CSV cell, by the rule of the module docstring."""
    if value is _MISSING:
        return ""
    if type(value) is str:
        return orjson.dumps(value).decode() if _reads_as_json(value) else value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _reads_as_json(text: str) -> bool:
    """Whether a CSV cell holding ``text`` as it is would read back as anything but ``text``."""
    if not text:
        return True
    if text[0] not in _JSON_START:
        return False
    try:
        _loads(text)
    except ValueError:
        return False
    return True


def _csv_value(text: str) -> Any:
    """The value of a CSV cell (:data:`_MISSING` for an empty one): the reverse of _csv_cell."""
    if not text:
        return _MISSING
    if text[0] in _JSON_START:
        try:
            return _loads(text)
        except ValueError:
            pass
    return text


def _loads(data: bytes | str) -> Any:
    """Parse JSON text exactly, or raise ``ValueError`` saying why (never a RecursionError).

    orjson reads an integer beyond 64 bits as a float; text that may hold one is
    read by the standard library instead, exactly, so the row check refuses it.
    """
    long = may_hold_long_numbers(data) if isinstance(data, bytes) else _long_text(data)
    if not long:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise ValueError(str(error)) from None
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("it nests lists and objects too deep") from None


def _long_text(text: str) -> bool:
    return len(text) >= 19 and _LONG_NUMBER(text) is not None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# -- import -------------------------------------------------------------------------------------


def read_export(folder: Path) -> tuple[Snapshot, list[Reject]]:
    """Read an export folder back: the rows and values that pass every check, and the rest.

    Raises :class:`ExchangeError` for a folder that is not an export (see the
    module docstring), the temporary folder of an export that never finished
    included; everything wrong inside a file is a :class:`Reject`.
    """
    if _UNFINISHED(Path(os.path.abspath(folder)).name):
        raise ExchangeError(
            f"{folder} is an export that never finished (a crash or a failure left it, and "
            "it may lack collections), so it is not read: export again, then remove it"
        )
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise files.storage_error(error, "read the export", folder) from error
    rejects: list[Reject] = []
    tables: dict[str, dict[str, Row]] = {}
    values: dict[str, Any] = {}
    limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        planned, has_values = _plan(folder, dir_fd)
        for table, name in sorted(planned.items()):
            rows = _Collection(table, name, rejects)
            _read_file(folder, dir_fd, name, partial(_READERS[name.rpartition(".")[2]], rows))
            if rows.rows:
                tables[table] = rows.rows
        if has_values:
            _read_file(folder, dir_fd, VALUES_FILE, partial(_read_values, values, rejects))
    finally:
        csv.field_size_limit(limit)
        os.close(dir_fd)
    return Snapshot(tables=tables, values=values), rejects


def _plan(folder: Path, dir_fd: int) -> tuple[dict[str, str], bool]:
    """The file of each collection and whether there are values; stray entries raise."""
    by_table: dict[str, str] = {}
    has_values = False
    problems: list[str] = []
    try:
        with os.scandir(dir_fd) as entries:
            found = sorted((entry.name, entry.is_file(follow_symlinks=False)) for entry in entries)
    except OSError as error:
        raise files.storage_error(error, "list the export", folder) from error
    for name, regular in found:
        table, dot, fmt = name.rpartition(".")
        if name.startswith("."):  # hidden: .DS_Store, an editor's swap file
            continue
        if not regular:
            problems.append(f"{name!r} is not a regular file (a link or a folder, say)")
        elif name == VALUES_FILE:
            has_values = True
        elif not dot or fmt not in FORMATS:
            problems.append(f"{name!r} is not <collection>.jsonl, .json or .csv")
        elif not _is_table_id(table):
            problems.append(
                f"{name!r} does not name a collection (a letter, then letters, digits, _)"
            )
        elif table in by_table:
            problems.append(f"{by_table[table]!r} and {name!r} both hold the collection {table!r}")
        else:
            by_table[table] = name
    if problems:
        raise ExchangeError(
            f"{folder} is not an export as hutch writes it: "
            + "; ".join(problems)
            + ". Rename, merge or move these out and import again (nothing was read: a "
            "file left unread would be data silently lost)"
        )
    return by_table, has_values


def _is_table_id(text: str) -> bool:
    try:
        check_table_id(text)
    except InvalidId:
        return False
    return True


def _read_file(folder: Path, dir_fd: int, name: str, read: Callable[[BinaryIO], None]) -> None:
    """Open ``name`` without following a link, check it is a regular file, and ``read`` it."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
        )
        with io.BufferedReader(io.FileIO(fd, "rb"), buffer_size=_BUFFER) as stream:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ExchangeError(f"{folder / name} is not a regular file; remove it")
            if stream.peek(len(_BOM)).startswith(_BOM):  # as Windows editors save UTF-8
                stream.read(len(_BOM))
            read(stream)
    except OSError as error:
        raise files.storage_error(error, "read", folder / name) from error


class _Collection:
    """The rows of one export file as they pass the checks, and a Reject for each that fails."""

    def __init__(self, table: str, file: str, rejects: list[Reject]) -> None:
        self.table = table
        self.file = file
        self.rows: dict[str, Row] = {}
        self._lines: dict[str, int] = {}
        self._rejects = rejects

    def add(self, line: int, record: Any, raw: Callable[[], str]) -> None:
        """Take ``{"id": row_id, ...cells}`` read at ``line``, or reject it."""
        if type(record) is not dict:
            self.reject(line, f"not an object but {_kind(record)}", raw())
            return
        row_id = record.get(RESERVED_CELL, _MISSING)
        if row_id is _MISSING:
            self.reject(line, 'no "id"', raw())
            return
        cells = record.copy()  # the record stays whole: a json reject shows it, id and all
        del cells[RESERVED_CELL]
        try:
            checked_id = check_row_id(self.table, row_id)
            row, _ = check_row(self.table, checked_id, cells)
        except (InvalidId, InvalidValue) as error:
            self.reject(line, str(error), raw(), row_id)
            return
        if not row:
            self.reject(line, "no cells (a row with no cells does not exist)", raw(), row_id)
            return
        first = self._lines.get(checked_id)
        if first is not None:
            self.reject(line, f"duplicate id: line {first} has it too and is kept", raw(), row_id)
            return
        self.rows[checked_id] = row
        self._lines[checked_id] = line

    def reject(self, line: int | None, reason: str, raw: str, row_id: object = None) -> None:
        self._rejects.append(
            Reject(
                file=self.file,
                line=line,
                collection=self.table,
                row_id=row_id if isinstance(row_id, str) else None,
                reason=reason,
                raw=raw,
            )
        )


def _read_jsonl(rows: _Collection, stream: BinaryIO) -> None:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            record = _loads(line)
        except ValueError as error:
            rows.reject(number, f"not JSON: {error}", _text(line))
            continue
        rows.add(number, record, partial(_text, line))


def _read_json(rows: _Collection, stream: BinaryIO) -> None:
    data = stream.read()
    try:
        records = _loads(data)
    except ValueError as error:
        rows.reject(None, f"not JSON, so none of it was read: {error}", _text(data))
        return
    if type(records) is not list:
        rows.reject(None, f"not a JSON array of rows but {_kind(records)}", _text(data))
        return
    for number, record in enumerate(records, 1):
        rows.add(number, record, partial(_json_text, record))


def _read_csv(rows: _Collection, stream: BinaryIO) -> None:
    # Undecodable bytes become lone surrogates, which the row check refuses, line by line.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=True)
    start = 1
    try:
        header = next(reader, None)
        problem = "it is empty" if header is None else _header_problem(rows.table, header)
        if header is None or problem:
            rows.reject(None, f"no header `id,<cell ids>`, so none of it was read: {problem}", "")
            return
        id_at = header.index(RESERVED_CELL)
        fields = [(at, name) for at, name in enumerate(header) if at != id_at]
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells:
                continue  # a blank line
            if len(cells) != len(header):
                reason = f"{len(cells)} cells, but the header has {len(header)}"
                rows.reject(line, reason, _csv_text(cells))
                continue
            record = {RESERVED_CELL: cells[id_at]}
            for at, name in fields:
                value = _csv_value(cells[at])
                if value is not _MISSING:
                    record[name] = value
            rows.add(line, record, partial(_csv_text, cells))
    except csv.Error as error:
        rows.reject(start, f"not CSV from here on, so the rest was not read: {error}", "")


def _header_problem(table: str, header: list[str]) -> str:
    """What is wrong with a CSV header, or ``""``."""
    if header.count(RESERVED_CELL) != 1:
        return f"it must name the column {RESERVED_CELL!r} once"
    seen: set[str] = set()
    for name in header:
        if name in seen:
            return f"it names the column {name!r} twice"
        seen.add(name)
        if name != RESERVED_CELL:
            try:
                check_cell_id(table, "(header)", name)
            except InvalidId as error:
                return str(error)
    return ""


_READERS: dict[str, Callable[[_Collection, BinaryIO], None]] = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
}


def _read_values(values: dict[str, Any], rejects: list[Reject], stream: BinaryIO) -> None:
    data = stream.read()

    def reject(line: int | None, reason: str, raw: str) -> None:
        rejects.append(Reject(file=VALUES_FILE, line=line, reason=reason, raw=raw))

    try:
        found = _loads(data)
    except ValueError as error:
        reject(None, f"not JSON, so no value was read: {error}", _text(data))
        return
    if type(found) is not dict:
        reject(None, f"not a JSON object of key -> value but {_kind(found)}", _text(data))
        return
    for number, (key, value) in enumerate(found.items(), 1):
        try:
            values[check_value_id(key)] = check_value(value, f"the value {key!r}")
        except (InvalidId, InvalidValue) as error:
            reject(number, str(error), _json_text({key: value}))


_KINDS = {list: "an array", dict: "an object", str: "a string", int: "a number", float: "a number"}


def _kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words."""
    return "null" if value is None else _KINDS.get(type(value), "true or false")


def _text(data: bytes) -> str:
    return data[: RAW_LIMIT * 4].decode("utf-8", "replace").rstrip("\r\n")


def _json_text(value: Any) -> str:
    """``value`` as JSON for a Reject, whatever it holds (a huge int, deep nesting)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        pass
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return "(too deeply nested to show)"


def _csv_text(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


# -- models -------------------------------------------------------------------------------------


def check_models(
    snapshot: Snapshot, models: Iterable[type[Model]]
) -> tuple[Snapshot, list[Reject]]:
    """Check the rows of every collection one of ``models`` describes against it.

    A row that does not build its model, or whose unique field (compared as the
    repository compares it: as stored, casefolded, or by its key) repeats one of
    an earlier row (in the snapshot's order: a file's order) is left out of the
    returned snapshot and rejected. ``snapshot`` itself is not changed; the new
    one shares its row dicts. Rows already in ``db`` are not compared: an import
    writes into an empty store or replaces what it holds.
    """
    tables = dict(snapshot.tables)
    rejects: list[Reject] = []
    for model in models:
        spec = spec_of(model)
        rows = tables.get(spec.collection)
        if not rows:
            continue
        kept = _check_rows(spec, rows, rejects)
        if kept:
            tables[spec.collection] = kept
        else:
            del tables[spec.collection]
    return Snapshot(tables=tables, values=snapshot.values), rejects


def _check_rows(spec: ModelSpec, rows: Mapping[str, Row], rejects: list[Reject]) -> dict[str, Row]:
    kept: dict[str, Row] = {}
    taken: list[dict[Hashable, str]] = [{} for _ in spec.unique]
    for row_id, row in rows.items():
        try:
            instance = from_row(spec.model, row_id, row)
            keys = [_unique_key(spec, unique, instance) for unique in spec.unique]
        except ValidationError as error:
            listed = "; ".join(f"{field}: {why}" for field, why in error.errors.items())
            reason = f"does not fit the model {spec.model.__qualname__}: {listed}"
            rejects.append(_model_reject(spec, row_id, row, reason))
            continue
        clash = _clash(spec, instance, keys, taken)
        if clash:
            rejects.append(_model_reject(spec, row_id, row, clash))
            continue
        for key, seen in zip(keys, taken, strict=True):
            if key is not _MISSING:
                seen[key] = row_id
        kept[row_id] = row
    return kept


def _clash(
    spec: ModelSpec, instance: Any, keys: Sequence[Any], taken: Sequence[dict[Hashable, str]]
) -> str:
    """Why a row's unique keys collide with an earlier row's, or ``""``."""
    for unique, key, seen in zip(spec.unique, keys, taken, strict=True):
        other = None if key is _MISSING else seen.get(key)
        if other is not None:
            field = unique.field
            shown = "this value" if field in spec.secret else repr(getattr(instance, field))
            where = f"{spec.collection}.{field} must be unique{_how(unique)}"
            return f"{where}: {shown} is taken by {other!r}"
    return ""


def _unique_key(spec: ModelSpec, unique: Unique, instance: Any) -> Any:
    """The key a unique field is compared by (as :class:`hutch.Repository` compares it), or
    :data:`_MISSING` when it takes part in no comparison (None, or an unhashable key)."""
    value = getattr(instance, unique.field)
    if value is None:
        return _MISSING
    kind = spec.fields[unique.field]
    if unique.key is not None:
        key = _key_of(spec, unique, stored(kind, value))
    elif unique.case_insensitive and isinstance(value, str):
        key = value.casefold()
    else:
        key = stored(kind, value)
    key = slice_key(key)  # True and 1 are different keys
    try:
        hash(key)
    except TypeError:  # a list: the repository finds no row under it either
        return _MISSING
    return key


def _key_of(spec: ModelSpec, unique: Unique, value: Any) -> Any:
    """``unique.key(value)``; a ValidationError rejects the row, any other error is a bug in
    the key (a DefinitionError, as on a write). Neither chains the key's own error, which
    may quote a secret value."""
    assert unique.key is not None
    field = unique.field
    failure: HutchError
    try:
        return unique.key(value)
    except ValidationError as error:
        why = "; ".join(error.errors.values()) or str(error)
        if field in spec.secret:
            why = f"refused by {_key_name(unique)} (the value is secret, so not shown)"
        failure = ValidationError(why, {field: why})
    except Exception as error:
        why = type(error).__name__ if field in spec.secret else f"{type(error).__name__}: {error}"
        failure = DefinitionError(
            f"the key of {spec.model.__qualname__}.{field} failed ({why}); fix it"
        )
    raise failure


def _how(unique: Unique) -> str:
    """How a unique field's values are compared, for a message."""
    if unique.key is not None:
        return f" (compared by {_key_name(unique)})"
    return " (ignoring case)" if unique.case_insensitive else ""


def _key_name(unique: Unique) -> str:
    return str(getattr(unique.key, "__qualname__", repr(unique.key)))


def _model_reject(spec: ModelSpec, row_id: str, row: Row, reason: str) -> Reject:
    shown = {k: "<secret>" if k in spec.secret else v for k, v in row.items()}
    return Reject(
        collection=spec.collection,
        row_id=row_id,
        reason=reason,
        raw=_json_text({RESERVED_CELL: row_id, **shown}),
    )


# -- rejects ------------------------------------------------------------------------------------


def write_rejects(path: Path, rejects: Iterable[Reject]) -> None:
    """Write ``rejects`` to the new file ``path``, one JSON object per line, for a person to
    read and fix, or a script to pick up. It appears whole or not at all, readable by its
    owner only (rejected rows hold what the store would); an existing ``path`` is never
    replaced (:class:`ExchangeError`): hutch never rewrites a file it did not create."""

    def fill(stream: BinaryIO) -> None:
        for reject in rejects:
            stream.write(orjson.dumps(attrs.asdict(reject)))
            stream.write(b"\n")

    try:
        files.write_atomic(path, fill)
    except FileExistsError:
        raise _rejects_exist(path) from None
    except OSError as error:
        raise files.storage_error(error, "write the rejects to", path) from error


def _rejects_exist(path: Path) -> ExchangeError:
    return ExchangeError(
        f"{path} exists already, and hutch never replaces a file it did not write: move it "
        "away, or choose another path for the rejects"
    )
