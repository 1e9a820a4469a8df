"""Backup archives (hutch.archives): what is written reads back exactly, a write is all or
nothing, and a hostile archive is refused with an error that names the member and says
what to do, never a raw tarfile, gzip or zlib traceback."""

from __future__ import annotations

import errno
import gzip
import io
import os
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_files import tmpfs

import hutch
from hutch import archives, snapshots
from hutch.archives import (
    ArchiveExists,
    ArchiveInfo,
    ArchiveTooLarge,
    Manifest,
    Summary,
    list_archives,
    read_archive,
    read_manifest,
    write_archive,
)
from hutch.cells import same_json

NOW = datetime(2026, 12, 2, 5, 15, 0, 123456, tzinfo=UTC)
NAME = "hutch-backup-20261202T051500.123456Z.tar.gz"

AWKWARD = hutch.Snapshot(
    tables={
        "things": {
            "b": {
                "int": 1,
                "float": 1.0,
                "big": 2**63 - 1,
                "small": -(2**63),
                "none": None,
                "negative_zero": -0.0,
                "tiny": 5e-324,
                "text": 'naïve ☃ 𝄞 \u2028 "quoted" \\ \n\t',
                "nested": {"list": [1, [2.5, {"deep": None}]], "empty": {}, "yes": True},
            },
            "A-1.x_y": {"ключ": "значение", "emoji 🙂": [], "no": False},
            "0": {"x": ""},
        },
        "Other_table": {"r": {"huge": 1.5e300}},
        "empty": {},
    },
    values={"int": 1, "float": 1.0, "list": [None, "x", 1.0], "ünï": {"a": 2**63 - 1}},
)
SMALL = hutch.Snapshot(
    tables={"users": {"u1": {"email": "a@x.io"}, "u2": {"email": "b@x.io", "age": 7}}},
    values={"k": 1},
)

Members = list[tuple[str, bytes]]


def written(folder: Path, snapshot: hutch.Snapshot = SMALL) -> Path:
    return write_archive(snapshot, folder, source="file:///srv/data", now=NOW)


def members_of(path: Path) -> Members:
    """The members of an archive hutch wrote, read with the standard library."""
    with tarfile.open(path, "r:gz") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]


def packed(path: Path, members: list[tuple[str, bytes] | tarfile.TarInfo], tar_format: int) -> Path:
    """An archive of ``members`` (a TarInfo stands for itself, without data)."""
    with tarfile.open(path, "w:gz", format=tar_format) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return path


def files_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# -- round trip --------------------------------------------------------------------------------


def test_every_value_reads_back_exactly(tmp_path: Path) -> None:
    path = write_archive(AWKWARD, tmp_path, source="memory://", now=NOW)

    manifest, snapshot = read_archive(path)

    expected = {name: rows for name, rows in AWKWARD.tables.items() if rows}
    assert snapshot.tables.keys() == expected.keys()  # a collection without rows does not exist
    for name, rows in expected.items():
        assert same_json(snapshot.tables[name], rows), name  # 1 and 1.0 stay apart
    assert same_json(snapshot.values, AWKWARD.values)
    assert manifest == read_manifest(path)
    hashes = snapshots.hashes(AWKWARD)
    assert manifest == Manifest(
        format=1,
        created=NOW,
        source="memory://",
        collections={
            "Other_table": Summary(1, hashes["Other_table"]),
            "things": Summary(3, hashes["things"]),
        },
        values=Summary(4, hashes[snapshots.VALUES]),
        settings={},
    )
    assert orjson.loads(members_of(path)[0][1]) == {
        "format": 1,
        "created": "2026-12-02T05:15:00.123456+00:00",
        "source": "memory://",
        "collections": {
            "Other_table": {"rows": 1, "sha256": hashes["Other_table"]},
            "things": {"rows": 3, "sha256": hashes["things"]},
        },
        "values": {"count": 4, "sha256": hashes[snapshots.VALUES]},
        "settings": {},
    }


def test_the_layout_is_manifest_first_then_rows_by_id_then_values(tmp_path: Path) -> None:
    path = written(tmp_path)

    members = members_of(path)

    assert [name for name, _ in members] == [
        "manifest.json",
        "collections/users.jsonl",
        "values.json",
    ]
    assert members[1][1].splitlines() == [
        b'{"id":"u1","email":"a@x.io"}',
        b'{"id":"u2","email":"b@x.io","age":7}',
    ]
    assert orjson.loads(members[2][1]) == {"k": 1}
    listed = subprocess.run(["tar", "-tzf", str(path)], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == [name for name, _ in members]  # any tar tool reads it


def test_the_name_is_the_utc_time_and_only_the_owner_may_read(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "backups"
    local = NOW.astimezone(timezone(timedelta(hours=2)))

    path = write_archive(SMALL, folder, source="memory://", now=local)

    assert path == folder / NAME
    assert list_archives(folder) == [ArchiveInfo(path, NOW, path.stat().st_size)]
    assert path.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    assert folder.parent.stat().st_mode & 0o777 == 0o700
    assert path.read_bytes()[3] & 0x08 == 0  # the gzip header names no (temporary) file


def test_a_naive_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(hutch.ConfigError, match="timezone-aware"):
        write_archive(SMALL, tmp_path, source="memory://", now=datetime(2026, 1, 1))
    assert files_in(tmp_path) == []


def test_an_invalid_collection_name_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    hostile = hutch.Snapshot(tables={"../x": {"r": {"a": 1}}})
    with pytest.raises(hutch.InvalidId, match=r"\.\./x"):
        write_archive(hostile, tmp_path, source="memory://", now=NOW)
    assert files_in(tmp_path) == []


def test_the_manifest_is_read_without_the_rest(tmp_path: Path) -> None:
    big = hutch.Snapshot(tables={"t": {f"r{i}": {"n": os.urandom(8).hex()} for i in range(5000)}})
    path = written(tmp_path, big)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    assert read_manifest(cut).collections["t"].count == 5000
    with pytest.raises(hutch.CorruptData, match="not a whole gzip file"):
        read_archive(cut)


# -- collection settings -----------------------------------------------------------------------


SETTINGS = {
    "users": hutch.CollectionSettings(indexed=("email", "name"), wal=True, path="people/all"),
    "audit": hutch.CollectionSettings(wal=False),  # no rows: its settings are kept all the same
}


def test_collection_settings_are_kept_and_read_back(tmp_path: Path) -> None:
    path = write_archive(SMALL, tmp_path, source="memory://", now=NOW, settings=SETTINGS)

    manifest, snapshot = read_archive(path)

    assert manifest.settings == SETTINGS
    assert read_manifest(path).settings == SETTINGS
    assert snapshot == SMALL
    assert orjson.loads(members_of(path)[0][1])["settings"] == {
        "audit": {"indexed": [], "wal": False, "path": None},
        "users": {"indexed": ["email", "name"], "wal": True, "path": "people/all"},
    }


def test_an_archive_without_settings_reads_as_having_none(tmp_path: Path) -> None:
    older = _manifest(lambda d: d.pop("settings"))(members_of(written(tmp_path)))
    path = packed(tmp_path / "older.tar.gz", older, tarfile.USTAR_FORMAT)

    manifest, snapshot = read_archive(path)

    assert manifest.settings == {}
    assert snapshot == SMALL


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"users": hutch.CollectionSettings(path="../elsewhere")}, "must be a relative folder"),
        ({"users": hutch.CollectionSettings(path="/etc")}, "must be a relative folder"),
        ({"users": hutch.CollectionSettings(indexed=("id",))}, "other than 'id'"),
        ({"../x": hutch.CollectionSettings()}, "invalid table id"),
    ],
)
def test_settings_a_read_would_refuse_are_not_written(
    tmp_path: Path, settings: dict[str, hutch.CollectionSettings], message: str
) -> None:
    with pytest.raises(
        hutch.ConfigError, match=f"cannot back up these collection settings.*{message}"
    ):
        write_archive(SMALL, tmp_path, source="memory://", now=NOW, settings=settings)
    assert files_in(tmp_path) == []


# -- sizes: none written that a read refuses ---------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "what"),
    [
        ("_MAX_COLLECTION_BYTES", "collection 'users'"),
        ("_MAX_VALUES_BYTES", "the keyed values"),
        ("_MAX_MANIFEST_BYTES", "the manifest"),
    ],
)
def test_a_member_bigger_than_a_read_accepts_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str, what: str
) -> None:
    sizes = {name: len(data) for name, data in members_of(written(tmp_path / "fits"))}
    member = {
        "_MAX_COLLECTION_BYTES": "collections/users.jsonl",
        "_MAX_VALUES_BYTES": "values.json",
        "_MAX_MANIFEST_BYTES": "manifest.json",
    }[limit]

    monkeypatch.setattr(archives, limit, sizes[member])  # just big enough: written and read
    assert read_archive(written(tmp_path / "exactly"))[1] == SMALL

    monkeypatch.setattr(archives, limit, sizes[member] - 1)
    with pytest.raises(ArchiveTooLarge, match=f"{what} takes {sizes[member]} bytes") as caught:
        written(tmp_path / "over")
    assert isinstance(caught.value, hutch.HutchError)
    assert "no backup was written" in str(caught.value)
    over = tmp_path / "over"
    assert not over.exists() or files_in(over) == []  # some are refused before the folder is made


def test_the_limits_are_within_what_ustar_holds() -> None:
    ustar = 8**11 - 1  # eleven octal digits of size
    assert max(archives._MAX_COLLECTION_BYTES, archives._MAX_VALUES_BYTES) < ustar


# -- writing: all or nothing -----------------------------------------------------------------


def test_an_existing_archive_is_never_replaced(tmp_path: Path) -> None:
    first = written(tmp_path)
    before = first.read_bytes()

    with pytest.raises(ArchiveExists, match="take the backup again") as caught:
        write_archive(AWKWARD, tmp_path, source="memory://", now=NOW)

    assert isinstance(caught.value, hutch.HutchError)
    assert first.read_bytes() == before
    assert files_in(tmp_path) == [NAME]


def test_without_hard_links_an_archive_is_renamed_into_place_and_still_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")  # as on FAT

    monkeypatch.setattr(os, "link", no_links)
    path = written(tmp_path)
    assert read_archive(path)[1] == SMALL
    with pytest.raises(ArchiveExists):
        written(tmp_path)
    assert files_in(tmp_path) == [NAME]


@pytest.mark.parametrize("failure", [OSError(errno.EIO, "I/O error"), KeyboardInterrupt()])
def test_a_failure_while_writing_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    def failing(handle: int) -> None:
        raise failure

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(hutch.StorageError if isinstance(failure, OSError) else KeyboardInterrupt):
        written(tmp_path)
    assert files_in(tmp_path) == []


def test_a_value_that_cannot_be_written_leaves_no_file(tmp_path: Path) -> None:
    unwritable = hutch.Snapshot(tables={"a": {"r": {"x": 1}}, "b": {"r": {"x": object()}}})
    with pytest.raises(TypeError):
        write_archive(unwritable, tmp_path, source="memory://", now=NOW)
    assert files_in(tmp_path) == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system."""
    with tmpfs(tmp_path / "small", "size=1m") as where:
        yield where


def test_a_full_disk_raises_disk_full_naming_the_archive_and_leaves_no_file(
    small_disk: Path,
) -> None:
    rows = {f"r{i}": {"noise": os.urandom(64).hex()} for i in range(20_000)}
    folder = small_disk / "backups"

    with pytest.raises(hutch.DiskFull) as caught:
        written(folder, hutch.Snapshot(tables={"t": rows}))

    assert str(caught.value).startswith(f"could not write the backup {folder / NAME}: ")
    assert str(caught.value).endswith("free space, then retry")
    assert ".tmp" not in str(caught.value)
    assert files_in(folder) == []


def test_a_file_in_place_of_the_folder_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "backups").write_text("mine")
    with pytest.raises(hutch.StorageError, match=r"could not create the backup folder .*backups"):
        written(tmp_path / "backups")
    assert (tmp_path / "backups").read_text() == "mine"


# -- listing ---------------------------------------------------------------------------------


def test_only_regular_files_named_as_archives_are_listed(tmp_path: Path) -> None:
    later = write_archive(SMALL, tmp_path, source="memory://", now=NOW + timedelta(hours=1))
    earlier = written(tmp_path)
    others = [
        "notes.txt",
        "hutch-backup-20261302T000000.000000Z.tar.gz",  # month 13
        "hutch-backup-20261202T051500.123456Z.tar.gz.part",
        "hutch-backup-20261202T051500Z.tar.gz",
        ".hutch-backup-abc.tmp",
    ]
    for name in others:
        (tmp_path / name).write_bytes(b"not mine")
    (tmp_path / "hutch-backup-20200101T000000.000000Z.tar.gz").symlink_to(earlier)
    (tmp_path / "hutch-backup-20200102T000000.000000Z.tar.gz").mkdir()

    found = list_archives(tmp_path)

    assert [info.path for info in found] == [earlier, later]  # oldest first
    assert [info.taken_at for info in found] == [NOW, NOW + timedelta(hours=1)]
    assert found[0].size == earlier.stat().st_size
    assert all((tmp_path / name).read_bytes() == b"not mine" for name in others)


def test_listing_a_folder_that_does_not_exist_says_so(tmp_path: Path) -> None:
    with pytest.raises(hutch.StorageError, match=r"list the backups in .*missing"):
        list_archives(tmp_path / "missing")


def test_reading_an_archive_that_does_not_exist_is_not_corrupt_data(tmp_path: Path) -> None:
    with pytest.raises(hutch.StorageError, match="could not read") as caught:
        read_archive(tmp_path / NAME)
    assert not isinstance(caught.value, hutch.CorruptData)


# -- hostile archives ------------------------------------------------------------------------


def _special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def _edit(name: str, change: Callable[[bytes], bytes]) -> Callable[[Members], list[Any]]:
    return lambda members: [(n, change(d) if n == name else d) for n, d in members]


def _manifest(change: Callable[[dict[str, Any]], object]) -> Callable[[Members], list[Any]]:
    def edit(data: bytes) -> bytes:
        manifest = orjson.loads(data)
        change(manifest)
        return orjson.dumps(manifest)

    return _edit("manifest.json", edit)


def _line(number: int, text: bytes) -> Callable[[Members], list[Any]]:
    def edit(data: bytes) -> bytes:
        lines = data.splitlines(keepends=True)
        lines[number - 1] = text + b"\n"
        return b"".join(lines)

    return _edit("collections/users.jsonl", edit)


USERS = "collections/users.jsonl"
# name: (how the members of SMALL's archive change, what the message says)
HOSTILE: dict[str, tuple[Callable[[Members], list[Any]], str]] = {
    "a name climbing out": (lambda m: [*m, ("../x", b"")], "'../x': is not a member"),
    "a collection name climbing out": (
        lambda m: [*m, ("collections/../../etc.jsonl", b"")],
        "'collections/../../etc.jsonl': is not a member",
    ),
    "an absolute name": (lambda m: [*m, ("/etc/passwd", b"")], "'/etc/passwd': is not a member"),
    "a collection not in the manifest": (
        lambda m: [*m, ("collections/other.jsonl", b"")],
        "'collections/other.jsonl': is not a member",
    ),
    "a symbolic link": (
        lambda m: [m[0], _special(USERS, tarfile.SYMTYPE, "/etc/passwd"), *m[1:]],
        f"'{USERS}': is a symbolic link, not a regular file",
    ),
    "a hard link": (
        lambda m: [m[0], _special(USERS, tarfile.LNKTYPE, "manifest.json"), *m[1:]],
        "is a hard link",
    ),
    "a folder": (lambda m: [m[0], _special("collections", tarfile.DIRTYPE), *m[1:]], "a folder"),
    "a duplicate member": (lambda m: [*m, m[-1]], "values.json: appears twice"),
    "a missing collection": (lambda m: [m[0], m[2]], f"{USERS}: is missing"),
    "a missing values member": (lambda m: m[:2], "values.json: is missing"),
    "no manifest first": (lambda m: [m[1], m[0], m[2]], f"its first member is '{USERS}'"),
    "an empty archive": (lambda m: [], "its first member is nothing"),
    "a wrong hash": (
        _manifest(lambda d: d["collections"]["users"].update(sha256="0" * 64)),
        f"{USERS}: its rows do not match the manifest's SHA-256",
    ),
    "a changed row": (
        _line(2, b'{"id":"u2","email":"b@x.io","age":8}'),
        f"{USERS}: its rows do not match",
    ),
    "a row with an invalid id": (_line(2, b'{"id":"../u2"}'), f"{USERS}, line 2: invalid row id"),
    "a row without an id": (_line(1, b'{"email":"a@x.io"}'), f'{USERS}, line 1: .*"id"'),
    "a row that is no object": (_line(1, b'["u1"]'), f"{USERS}, line 1: a row must be"),
    "a row id twice": (_line(2, b'{"id":"u1"}'), f"{USERS}, line 2: row 'u1' appears twice"),
    "a row holding what a write refuses": (
        _line(1, b'{"id":"u1","n":18446744073709551616}'),
        f"{USERS}, line 1: .*64 bits",
    ),
    "malformed JSON": (_line(2, b'{"id":'), f"{USERS}, line 2: "),
    "a row too many": (
        _edit(USERS, lambda d: d + b'{"id":"u3","a":1}\n'),
        "it holds 3 rows, the manifest says 2",
    ),
    "a line cut short": (_edit(USERS, lambda d: d[:-1]), f"{USERS}, line 2: it is cut short"),
    "a value id a write refuses": (
        _edit("values.json", lambda d: b'{"":1}'),
        "values.json: invalid value id",
    ),
    "a changed value": (
        _edit("values.json", lambda d: b'{"k":2}'),
        "values.json: the values do not match",
    ),
    "values that are no object": (_edit("values.json", lambda d: b"[]"), "one JSON object"),
    "a manifest that is no JSON": (_edit("manifest.json", lambda d: b"{"), "malformed JSON"),
    "a manifest that is no object": (_edit("manifest.json", lambda d: b"1"), "not a JSON object"),
    "a format that is no number": (
        _manifest(lambda d: d.update(format="1")),
        "its \"format\" is '1', not a format number",
    ),
    "a manifest without collections": (
        _manifest(lambda d: d.pop("collections")),
        '"collections" is missing',
    ),
    "a manifest whose time is no time": (
        _manifest(lambda d: d.update(created="yesterday")),
        '"created" is not a time',
    ),
    "a manifest whose time has no zone": (
        _manifest(lambda d: d.update(created="2026-12-02T05:15:00")),
        '"created" is not a time with its zone',
    ),
    "settings that are no object": (
        _manifest(lambda d: d.update(settings=[])),
        'its "settings": they must be a JSON object',
    ),
    "settings of an invalid collection name": (
        _manifest(lambda d: d.update(settings={"../x": {}})),
        'its "settings": collections: invalid table id',
    ),
    "settings that are no object for a collection": (
        _manifest(lambda d: d.update(settings={"users": "indexed"})),
        "the settings of collection 'users' must be a dict",
    ),
    "an unknown setting": (
        _manifest(lambda d: d.update(settings={"users": {"color": "red"}})),
        r"collection 'users' has unknown settings \['color'\]",
    ),
    "indexed fields that are no list": (
        _manifest(lambda d: d.update(settings={"users": {"indexed": "email"}})),
        "'indexed' must be a list",
    ),
    "a wal that is no boolean": (
        _manifest(lambda d: d.update(settings={"users": {"wal": 1}})),
        "'wal' must be true or false",
    ),
    "a path that is no string": (
        _manifest(lambda d: d.update(settings={"users": {"path": 5}})),
        "'path' must be a non-empty string",
    ),
    "a path climbing out": (
        _manifest(lambda d: d.update(settings={"users": {"path": "a/../../etc"}})),
        "path 'a/../../etc' must be a relative folder",
    ),
    "an absolute path": (
        _manifest(lambda d: d.update(settings={"users": {"path": "/srv/x"}})),
        "path '/srv/x' must be a relative folder",
    ),
    "an invalid collection name in the manifest": (
        _manifest(lambda d: d["collections"].update({"../x": d["collections"]["users"]})),
        "manifest.json: invalid table id '../x'",
    ),
    "a negative row count": (
        _manifest(lambda d: d["collections"]["users"].update(rows=-1)),
        "collection 'users' must be {\"rows\"",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_archive_is_refused_naming_what_is_wrong(tmp_path: Path, case: str) -> None:
    change, message = HOSTILE[case]
    path = packed(
        tmp_path / "hostile.tar.gz", change(members_of(written(tmp_path))), tarfile.GNU_FORMAT
    )

    with pytest.raises(hutch.CorruptData, match=message) as caught:
        read_archive(path)

    assert str(caught.value).startswith(f"{path}: ")
    assert str(caught.value).endswith("restore another backup")


def test_a_pax_header_is_refused(tmp_path: Path) -> None:
    members: list[Any] = members_of(written(tmp_path))
    path = packed(tmp_path / "pax.tar.gz", [members[0], ("x" * 200, b"")], tarfile.PAX_FORMAT)
    with pytest.raises(hutch.CorruptData, match="is a pax extended header, not a regular file"):
        read_archive(path)


def test_an_absurd_size_is_refused_before_it_is_read(tmp_path: Path) -> None:
    manifest = members_of(written(tmp_path))[0][1]
    header = tarfile.TarInfo("manifest.json")
    header.size = (8 << 30) - 1  # the most a tar header can say
    path = tmp_path / "bomb.tar.gz"
    path.write_bytes(gzip.compress(header.tobuf(tarfile.USTAR_FORMAT) + manifest))
    with pytest.raises(hutch.CorruptData, match=r"manifest\.json: it claims 8589934591 bytes"):
        read_archive(path)


def test_a_newer_format_is_unsupported(tmp_path: Path) -> None:
    change = _manifest(lambda d: d.update(format=2, collections="something new"))
    path = packed(
        tmp_path / "new.tar.gz", change(members_of(written(tmp_path))), tarfile.GNU_FORMAT
    )
    for read in (read_manifest, read_archive):
        with pytest.raises(hutch.UnsupportedFormat, match=r"format 2.*upgrade hutch"):
            read(path)


def _gzipped_tar(tmp_path: Path) -> bytes:
    return gzip.decompress(written(tmp_path).read_bytes())


DAMAGED: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "an empty file": (lambda t: b"", "ends without the end-of-archive marker"),
    "not a gzip file": (lambda t: b"hello, world\n", "not a whole gzip file"),
    "an uncompressed tar": (_gzipped_tar, "not a whole gzip file"),
    "a truncated gzip file": (lambda t: written(t).read_bytes()[:-30], "not a whole gzip file"),
    "a garbled gzip file": (
        lambda t: (lambda d: d[:40] + bytes(b ^ 0x55 for b in d[40:80]) + d[80:])(
            written(t).read_bytes()
        ),
        "not a whole gzip file",
    ),
    "gzip of no tar": (lambda t: gzip.compress(os.urandom(2000)), "its tar header is damaged"),
    "a damaged tar header": (
        lambda t: gzip.compress(b"X" + _gzipped_tar(t)[1:]),
        "member 1: its tar header is damaged",
    ),
    "a tar cut inside a member": (
        lambda t: gzip.compress(_gzipped_tar(t)[:600]),
        "the archive ends inside it",
    ),
    "something after the end": (
        lambda t: gzip.compress(_gzipped_tar(t) + b"surprise"),
        "something follows the end of the archive",
    ),
    "two archives in one": (
        lambda t: (lambda d: d + d)(written(t).read_bytes()),
        "something follows the end of the archive",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_file_is_corrupt_data_not_a_traceback(tmp_path: Path, case: str) -> None:
    make, message = DAMAGED[case]
    path = tmp_path / "damaged.tar.gz"
    path.write_bytes(make(tmp_path))
    with pytest.raises(hutch.CorruptData, match=message):
        read_archive(path)


def test_any_damaged_byte_is_refused_or_changes_nothing(tmp_path: Path) -> None:
    """Flip each byte of a small archive in turn: gzip's CRC and the manifest's hashes leave
    only header bytes that hold no data (its time, its OS) free to change."""
    original = written(tmp_path).read_bytes()
    path = tmp_path / "flipped.tar.gz"
    harmless = 0
    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0xFF
        path.write_bytes(damaged)
        try:
            _, snapshot = read_archive(path)
        except (hutch.CorruptData, hutch.UnsupportedFormat):
            continue
        assert snapshot == SMALL
        harmless += 1
    assert harmless < 10
