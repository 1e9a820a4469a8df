"""Parsing what ``hutch.open`` is given: the URL, the durability and the collection settings.

All of it is checked before a backend is touched, so a typo fails at once with
a message that says what to write instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import unquote

import attrs

from hutch.errors import ConfigError, InvalidId
from hutch.ids import check_table_id

Durability = Literal["commit", "batch", "none"]
DURABILITIES: tuple[str, ...] = get_args(Durability)

#: Where ``hutch.open()`` goes when given no URL and ``$HUTCH_URL`` is unset.
DEFAULT_URL = "./data"

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
#: The name of a query parameter whose value is a secret: ``password``, ``sslpassword``...
_SECRET_NAME = re.compile(r"password|secret|token", re.IGNORECASE).search


@attrs.frozen
class URL:
    """A parsed store URL: its scheme and the text it was written as.

    A bare path (``./data``) is a ``file`` URL; a one-letter "scheme" is a
    Windows drive (``C:\\data``), so it is a path too.
    """

    scheme: str
    raw: str
    bare_path: bool = False

    def __str__(self) -> str:  # ``raw`` may hold a password: what is shown is redacted
        return self.redacted()

    def __repr__(self) -> str:
        return f"URL({self.redacted()!r})"

    @property
    def rest(self) -> str:
        """What follows ``scheme:`` (the whole text for a bare path)."""
        return self.raw if self.bare_path else self.raw[len(self.scheme) + 1 :]

    def redacted(self) -> str:
        """The URL with any password replaced by ``***``, for messages and logs.

        That is the password of ``user:password@host`` (read up to the last
        ``@``, so an unescaped ``/`` or ``@`` in it is hidden too) and the value
        of a query parameter named like a secret (``password``, ``sslpassword``,
        ``...token``, percent-escaped or not). Everything else is shown as written.
        """
        if self.bare_path:
            return self.raw
        rest = self.rest
        userinfo, at, after = rest.rpartition("@")
        if at and ":" in userinfo.lstrip("/"):
            lead = len(userinfo) - len(userinfo.lstrip("/"))
            user = userinfo[lead:].split(":", 1)[0]
            rest = f"{userinfo[:lead]}{user}:***@{after}"
        path, mark, query = rest.partition("?")
        if mark:
            query = "&".join(_redacted_parameter(p) for p in query.split("&"))
        return f"{self.scheme}:{path}{mark}{query}"

    def host(self) -> str:
        """The host a ``scheme://host/...`` URL names, without any user or password."""
        return self.rest[2:].partition("/")[0].rpartition("@")[2]

    def file_path(self) -> Path:
        """The local path of a bare path or a ``scheme:///absolute`` / ``scheme:relative`` URL.

        Follows RFC 8089: an empty authority or ``localhost`` means this machine;
        percent escapes are decoded.
        """
        if self.bare_path:
            return Path(self.raw)
        path = self.rest
        if path.startswith("//"):
            host, slash, after = path[2:].partition("/")
            if host not in ("", "localhost"):
                raise ConfigError(
                    f"{self.redacted()!r} names the host {self.host()!r}; a {self.scheme} URL "
                    f"names a local folder: write {self.scheme}:///absolute/path or "
                    f"{self.scheme}:relative/path"
                )
            path = slash + after
        path = unquote(path)
        if not path:
            raise ConfigError(
                f"{self.redacted()!r} has no path; write {self.scheme}:///absolute/path "
                f"or {self.scheme}:relative/path"
            )
        return Path(path)


_USER_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*:/*[^\s/@:'\"]*:)[^\s'\"]*@")
_SECRET_PARAMETER = re.compile(
    r"([?&][^=&\s'\"]*(?:password|secret|token)[^=&\s'\"]*=)[^&\s'\"]*", re.IGNORECASE
)


def redact_text(text: str) -> str:
    """``text`` with every password that looks like part of a URL hidden, as
    :meth:`URL.redacted` hides it: for messages that quote what a user typed."""
    return _SECRET_PARAMETER.sub(r"\1***", _USER_PASSWORD.sub(r"\1***@", text))


def _redacted_parameter(parameter: str) -> str:
    name, equals, _ = parameter.partition("=")
    return f"{name}=***" if equals and _SECRET_NAME(unquote(name)) else parameter


def parse_url(url: str | os.PathLike[str] | None) -> URL:
    """Parse what ``hutch.open`` was given; ``None`` means ``$HUTCH_URL``, else ``./data``."""
    if url is None:
        url = os.environ.get("HUTCH_URL") or DEFAULT_URL
    if isinstance(url, os.PathLike):
        return URL("file", os.fspath(url), bare_path=True)
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"hutch.open needs a URL or a path, got {url!r}; "
            "for example 'memory://', './data' or 'sqlite:///app.db'"
        )
    match = _SCHEME.match(url)
    if match and len(match.group(1)) > 1:
        return URL(match.group(1).lower(), url)
    return URL("file", url, bare_path=True)


def check_durability(durability: object) -> Durability:
    """Return ``durability`` if it is one of ``commit``, ``batch`` or ``none``."""
    if durability not in DURABILITIES:
        raise ConfigError(
            f"durability={durability!r} is not one of {', '.join(map(repr, DURABILITIES))}"
        )
    return cast(Durability, durability)


def check_lock_timeout(seconds: object) -> float:
    """Return ``seconds`` if it is a positive number (``math.inf``: wait for ever)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ConfigError(
            f"lock_timeout={seconds!r} is not a positive number of seconds (the longest wait "
            "for a lock another process holds)"
        )
    return float(seconds)


@attrs.frozen
class CollectionSettings:
    """How a backend stores one collection; every backend accepts every setting.

    ``indexed``: fields a backend keeps an on-disk index for; ``wal``: whether
    commits go through the write-ahead log (``None``: the backend's default);
    ``path``: where the collection lives, for backends with folders.
    """

    indexed: tuple[str, ...] = ()
    wal: bool | None = None
    path: str | None = None


_SETTING_NAMES = tuple(field.name for field in attrs.fields(CollectionSettings))


def parse_collections(collections: object) -> dict[str, CollectionSettings]:
    """Check ``hutch.open(collections=...)`` and return it as :class:`CollectionSettings`."""
    if collections is None:
        return {}
    if not isinstance(collections, Mapping):
        raise ConfigError(
            "collections must be a dict of collection name -> settings, "
            f"such as {{'users': {{'indexed': ['email']}}}}; got {type(collections).__name__}"
        )
    parsed = {}
    for name, settings in collections.items():
        try:
            check_table_id(name)
        except InvalidId as error:
            raise ConfigError(f"collections: {error}") from None
        parsed[name] = _parse_settings(name, settings)
    return parsed


def _parse_settings(name: str, settings: object) -> CollectionSettings:
    if isinstance(settings, CollectionSettings):
        return settings
    if not isinstance(settings, Mapping):
        raise ConfigError(f"the settings of collection {name!r} must be a dict, not {settings!r}")
    unknown = sorted(set(settings) - set(_SETTING_NAMES))
    if unknown:
        raise ConfigError(
            f"collection {name!r} has unknown settings {unknown}; "
            f"the settings are {', '.join(_SETTING_NAMES)}"
        )
    indexed: Any = settings.get("indexed", ())
    if isinstance(indexed, str) or not isinstance(indexed, list | tuple):
        raise ConfigError(f"collection {name!r}: 'indexed' must be a list of field names")
    for field in indexed:
        if not isinstance(field, str) or not field or field == "id":
            raise ConfigError(
                f"collection {name!r}: indexed field {field!r} must be a non-empty field name "
                "other than 'id' (the row id needs no index)"
            )
    duplicates = sorted({field for field in indexed if indexed.count(field) > 1})
    if duplicates:
        raise ConfigError(f"collection {name!r}: indexed fields {duplicates} are listed twice")
    wal = settings.get("wal")
    if wal is not None and not isinstance(wal, bool):
        raise ConfigError(f"collection {name!r}: 'wal' must be true or false, not {wal!r}")
    path = settings.get("path")
    if path is not None and (not isinstance(path, str) or not path):
        raise ConfigError(f"collection {name!r}: 'path' must be a non-empty string, not {path!r}")
    return CollectionSettings(indexed=tuple(indexed), wal=wal, path=path)
