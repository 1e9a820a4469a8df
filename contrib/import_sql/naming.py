"""Which collection a PostgreSQL table becomes, and which field each of its columns.

Without ``--prisma`` a table keeps its name where that is a valid collection id
(a letter, then letters, digits and underscores: 64 at most), and is otherwise
spelled into one; a column keeps its name (fields are free-form). With
``--prisma``, Prisma's conventions are undone: the model ``"VerificationToken"``
is the collection ``verification_tokens``, the column ``providerAccountId`` the
field ``provider_account_id``, and the American spelling of the platform's
organisation is the platform models' (``organizationId`` is ``organisation_id``).
"""

from __future__ import annotations

import re

from hutch.ids import check_table_id

#: Prisma's own table, the history of its migrations: not the application's data.
PRISMA_TABLES = frozenset({"_prisma_migrations"})
#: The spelling of the platform models, where a Prisma schema spells a word otherwise.
SPELLING = {"organization": "organisation", "organizations": "organisations"}

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_NOT_ID = re.compile(r"[^A-Za-z0-9_]+")
_LONGEST = 64


def snake(name: str) -> str:
    """``camelCase``, ``PascalCase`` or ``snake_case`` as ``snake_case``: ``credentialID`` is
    ``credential_id``, ``HTTPServer`` is ``http_server``."""
    words = []
    for part in re.split(r"[^A-Za-z0-9]+", name):
        words += [word.lower() for word in _WORDS.findall(part)]
    return "_".join(SPELLING.get(word, word) for word in words)


def plural(word: str) -> str:
    """The English plural of a model's last word, as a table of rows names it."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def collection_name(table: str, *, prisma: bool) -> str:
    """The collection ``table`` becomes: a Prisma model's name in the plural and snake case
    (``"User"`` is ``users``), or the table's own name spelled as a collection id."""
    if prisma and table[:1].isupper():
        words = snake(table).split("_")
        words[-1] = SPELLING.get(plural(words[-1]), plural(words[-1]))
        name = "_".join(words)
    elif prisma:
        name = snake(table)
    else:
        name = _NOT_ID.sub("_", table).strip("_")
    if not name[:1].isalpha() or not name[:1].isascii():
        name = "t_" + name
    return check_table_id(name[:_LONGEST].rstrip("_"))


def field_name(column: str, *, prisma: bool) -> str:
    """The field a column becomes: its name, or in snake case with ``prisma``."""
    return snake(column) if prisma else column
