"""Fresh ``postgresql://`` stores for the parity suite: a pytest plugin (``-p`` loads it).

::

    pytest --pyargs hutch.testing -p hutch.backends.postgres.testing \\
        --hutch-url postgresql://user:password@host/database

Each test's store is a new schema of that database, named after the test, and
named on the search path of the URL the test opens. The schemas stay behind for
inspection, as the other backends' files do: point ``--hutch-url`` at a
database made for the run.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

from hutch.config import parse_url


def fresh_url(base_url: str, name: str) -> str:
    """Make a new, empty schema for ``name`` in the database of ``base_url``; its URL.

    The schema is ``hutch_<hash>_<name>`` in lower case, cut to PostgreSQL's 63
    bytes (the hash keeps names that are cut alike apart).
    """
    import psycopg

    from .schema import MAX_NAME, ident

    if re.search(r"[?&]options=", base_url):
        raise ValueError(
            f"{parse_url(base_url).redacted()}: the URL sets options already; the fresh stores "
            "set the search path there, so give a URL without options"
        )
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    schema = f"hutch_{digest}_{re.sub(r'[^a-z0-9_]', '_', name.lower())}"[:MAX_NAME]
    with psycopg.connect(base_url, autocommit=True, connect_timeout=30) as conn:
        conn.execute(f"CREATE SCHEMA {ident(schema)}")
    options = quote(f"-csearch_path={schema}", safe="")
    return f"{base_url}{'&' if '?' in base_url else '?'}options={options}"


def pytest_hutch_fresh_url(base_url: str, name: str) -> str | None:
    """The parity suite's hook: a new schema for each store of a ``postgresql://`` run."""
    if parse_url(base_url).scheme not in ("postgresql", "postgres"):
        return None
    return fresh_url(base_url, name)
