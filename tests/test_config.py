"""URLs, durability and collection settings: what hutch.open checks before touching a backend."""

from __future__ import annotations

from pathlib import Path

import pytest

import hutch
from hutch.config import CollectionSettings, parse_collections, parse_url


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("memory://", "memory"),
        ("file:///srv/data", "file"),
        ("jsonl:relative/log", "jsonl"),
        ("sqlite:///app.db", "sqlite"),
        ("postgresql://u:p@localhost/db", "postgresql"),
        ("S3://bucket", "s3"),
        ("./data", "file"),
        ("data", "file"),
        ("/srv/data", "file"),
        ("C:\\data", "file"),
    ],
)
def test_scheme_of_a_url_or_a_bare_path(text: str, scheme: str) -> None:
    assert parse_url(text).scheme == scheme


def test_a_bare_path_is_a_file_url() -> None:
    url = parse_url("./data")
    assert url.bare_path
    assert url.file_path() == Path("./data")


def test_a_path_object_is_a_file_url(tmp_path: Path) -> None:
    url = parse_url(tmp_path)
    assert url.scheme == "file"
    assert url.file_path() == tmp_path


def test_no_url_means_hutch_url_then_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUTCH_URL", raising=False)
    assert parse_url(None).raw == "./data"
    monkeypatch.setenv("HUTCH_URL", "memory://")
    assert parse_url(None).scheme == "memory"


def test_hutch_open_without_a_url_uses_hutch_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUTCH_URL", "memory://")
    with hutch.open() as db:
        assert db.url == "memory://"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("file:///srv/data", "/srv/data"),
        ("file://localhost/srv/data", "/srv/data"),
        ("file:/srv/data", "/srv/data"),
        ("file:relative/data", "relative/data"),
        ("jsonl:///srv/my%20log", "/srv/my log"),
    ],
)
def test_file_paths_follow_rfc_8089(text: str, path: str) -> None:
    assert parse_url(text).file_path() == Path(path)


@pytest.mark.parametrize("text", ["file://elsewhere/srv", "file:", "file://"])
def test_file_urls_without_a_local_path_are_refused(text: str) -> None:
    with pytest.raises(hutch.ConfigError, match="file:///absolute/path"):
        parse_url(text).file_path()


@pytest.mark.parametrize("bad", ["", "   ", 42])
def test_empty_or_non_string_urls_are_refused(bad: object) -> None:
    with pytest.raises(hutch.ConfigError, match="needs a URL or a path"):
        parse_url(bad)  # type: ignore[arg-type]


def test_passwords_are_hidden_in_messages() -> None:
    url = parse_url("postgresql://app:s3cret@db.example/prod")
    assert url.redacted() == "postgresql://app:***@db.example/prod"
    assert url.raw == "postgresql://app:s3cret@db.example/prod"  # what a backend connects with
    config = hutch.BackendConfig(url=url)
    for shown in (str(url), repr(url), f"{url}", repr(config), repr([url])):
        assert "s3cret" not in shown
    with pytest.raises(hutch.StorageError) as caught:  # no server there: refused at once
        hutch.open("postgresql://app:s3cret@127.0.0.1:1/prod")
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://h/db?password=s3cret&sslmode=require", "?password=***&sslmode=require"),
        ("postgresql://u@h/db?sslpassword=s3cret", "?sslpassword=***"),
        ("postgresql://u:s3cret@[::1/db", "postgresql://u:***@[::1/db"),  # a malformed host
        ("postgresql://u:s3/cret@h/db", "postgresql://u:***@h/db"),  # a "/" left unescaped
        ("postgresql://u:s3@cret@h/db", "postgresql://u:***@h/db"),  # an "@" left unescaped
        ("postgresql:u:s3cret@h/db", "postgresql:u:***@h/db"),  # no "//"
        ("postgresql:///db?pass%77ord=s3cret", "postgresql:///db?pass%77ord=***"),
        ("postgresql:///db?password=s3cret", "postgresql:///db?password=***"),  # as written
    ],
)
def test_passwords_in_a_query_or_a_malformed_url_are_hidden(url: str, shown: str) -> None:
    parsed = parse_url(url)
    assert shown in parsed.redacted()
    for text in (parsed.redacted(), str(parsed), repr(parsed)):
        assert "cret" not in text  # every password here ends so


@pytest.mark.parametrize("url", ["file://u:s3cret@host/x", "sqlite://u:s3cret@host/x.db"])
def test_a_host_named_by_mistake_is_shown_without_its_password(url: str) -> None:
    with pytest.raises(hutch.ConfigError, match="names the host 'host'") as caught:
        hutch.open(url)
    assert "s3cret" not in str(caught.value)


def test_backend_options_show_their_names_only() -> None:
    config = hutch.BackendConfig(url=parse_url("memory://"), options={"password": "s3cret"})
    assert "password" in repr(config)
    assert "s3cret" not in repr(config)


def test_durability_must_be_one_of_three() -> None:
    for durability in ("commit", "batch", "none"):
        hutch.open("memory://", durability=durability).close()
    with pytest.raises(hutch.ConfigError, match="'commit', 'batch', 'none'"):
        hutch.open("memory://", durability="sometimes")


def test_collection_settings_are_parsed() -> None:
    parsed = parse_collections({"users": {"indexed": ["email"], "wal": True}, "logs": {}})
    assert parsed == {
        "users": CollectionSettings(indexed=("email",), wal=True),
        "logs": CollectionSettings(),
    }


@pytest.mark.parametrize(
    ("collections", "message"),
    [
        ({"bad name": {}}, "invalid table id"),
        ({"users": {"indexd": ["email"]}}, "unknown settings"),
        ({"users": {"indexed": "email"}}, "must be a list"),
        ({"users": {"indexed": ["email", "email"]}}, "listed twice"),
        ({"users": {"indexed": [""]}}, "non-empty field name"),
        ({"users": {"indexed": ["id"]}}, "other than 'id'"),
        ({"users": {"wal": "yes"}}, "true or false"),
        ({"users": {"path": ""}}, "non-empty string"),
        ({"users": ["email"]}, "must be a dict"),
        (["users"], "must be a dict"),
    ],
)
def test_bad_collection_settings_fail_before_any_work(collections: object, message: str) -> None:
    with pytest.raises(hutch.ConfigError, match=message):
        hutch.open("memory://", collections=collections)  # type: ignore[arg-type]


def test_memory_accepts_every_collection_setting() -> None:
    settings = {"users": {"indexed": ["email"], "wal": False, "path": "people"}}
    with hutch.open("memory://", collections=settings) as db:
        assert db.config.collections["users"].path == "people"


def test_a_backend_rejects_options_it_does_not_know() -> None:
    with pytest.raises(hutch.ConfigError, match="does not take the option"):
        hutch.open("memory://", batch_intervall=3)


def test_memory_takes_no_path() -> None:
    with pytest.raises(hutch.ConfigError, match="write memory://"):
        hutch.open("memory://somewhere")
