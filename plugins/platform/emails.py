"""The email rule: which texts name one mailbox, and which are not one mailbox at all.

Sign-in matches people by email (a sign-in link, an OAuth account linked by
its address), so the rule decides whose account someone gets. Two addresses
are the same mailbox when their :func:`email_key` is the same:

- the domain is compared by its IDNA2008 A-label, after UTS #46 mapping
  without transitional processing (``straße.de`` is ``xn--strae-oqa.de``, not
  ``strasse.de``: those are two domains, registered separately); a trailing
  dot is dropped;
- the local part (before the ``@``) is NFC-normalised and its ASCII letters
  lower-cased; anything else in it is compared exactly (``straße@`` is not
  ``strasse@``, ``Ä`` is not ``ä``), because only the mailbox's own server
  knows what else it treats as equal.

Text that is not one mailbox in practice is refused (:class:`hutch.ValidationError`):
an invisible or control character anywhere, a space inside, a quoted local
part, a local part that is not a dot-atom, a domain that is not a valid IDNA
name (an address literal such as ``[192.0.2.1]`` included).

The rule before this one (version 1) compared NFKC + ``casefold()`` of the
whole address, which takes ``ß`` for ``ss`` and so two domains for one:
:func:`legacy_email_key` keeps it, only to review stores written under it
(:mod:`hutch.plugins.platform.email_review`).
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata

import idna

import hutch

#: The version of the rule; the email review records it in the store (see email_review).
EMAIL_RULE = 2

#: RFC 5321's limit on the part before the ``@``, in bytes of UTF-8.
LOCAL_PART_MAX = 64
#: RFC 5321's limit on a whole address (a path of 256 octets, less its angle brackets).
ADDRESS_MAX = 254
#: What ``normalise_email`` trims: spaces, tabs and line ends, never another control character.
_SURROUNDING_SPACE = (
    " \t\n\r\f\v"
    "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u202f\u205f\u3000"  # Unicode's space separators (Zs)
)
#: How much of a refused address an error quotes.
_QUOTED_MAX = 80

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
#: What a dot-atom's ASCII characters may be besides dots (RFC 5322 ``atext``).
_ATEXT = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~")
#: A dot-atom (RFC 5322), with any non-ASCII character allowed as a letter (RFC 6531).
_ASCII_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\U0010FFFF-]+"
_DOT_ATOM = re.compile(rf"{_ATOM}(?:\.{_ATOM})*").fullmatch
#: A domain every resolver reads as itself: LDH labels, none of them an A-label, the last
#: one not a number (decimal, or hexadecimal as URL parsers read IPv4 addresses).
_LABEL = r"(?!..--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = rf"(?!.{{254}})(?:{_LABEL}\.)*(?![0-9]+$|0x[0-9a-f]*$){_LABEL}"
_PLAIN_DOMAIN = re.compile(_DOMAIN, re.ASCII).fullmatch
#: An ASCII address whose key is itself lower-cased: at most 254 characters, a dot-atom of
#: at most 64, then a plain domain.
_PLAIN_ADDRESS = re.compile(
    rf"(?!.{{255}})(?=[^@]{{1,64}}@){_ASCII_ATOM}(?:\.{_ASCII_ATOM})*@{_DOMAIN}",
    re.ASCII | re.IGNORECASE,
).fullmatch
_NUMBER_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.ASCII).fullmatch
#: Categories of characters nobody sees: controls, formats, surrogates, private use,
#: unassigned, and line and paragraph separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: Invisible characters of other categories: the rest of Unicode's Default_Ignorable_Code_Point
#: (combining grapheme joiner, fillers, variation selectors) and the blank Braille pattern.
_INVISIBLE_RANGES = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0000, 0xE0FFF),
)


def normalise_email(email: str) -> str:
    """An email as stored: surrounding spaces removed, NFC-normalised, case kept.

    NFC only joins what Unicode says is the same text (``e`` + combining acute
    is ``é``); nothing that could name another mailbox is folded.
    """
    if not isinstance(email, str):  # callers without a type checker
        raise _invalid(email, f"expected text, not a value of type {type(email).__name__}")
    text = email.strip(_SURROUNDING_SPACE)
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def email_key(email: object) -> str:
    """What two addresses share exactly when they are one mailbox (see the module's rule).

    Raises :class:`hutch.ValidationError` (``errors["email"]`` says why) for
    text that is not one mailbox.
    """
    if not isinstance(email, str):
        raise _invalid(email, f"expected text, not a value of type {type(email).__name__}")
    address = normalise_email(email)
    if _PLAIN_ADDRESS(address):  # most addresses: one regular expression decides
        return address.lower()
    return _key(address)


def _key(address: str) -> str:
    """The key of a normalised address, or ValidationError: every rule, checked one by one."""
    if len(address) > ADDRESS_MAX:
        raise _invalid(address, f"it is longer than {ADDRESS_MAX} characters")
    if not (address.isascii() and address.isprintable() and " " not in address):
        _check_characters(address)
    local, at, domain = address.rpartition("@")
    if not at or not _DOT_ATOM(local) or not domain or domain.startswith("["):
        raise _invalid(address, _why_not(local, at, domain))
    if len(local.encode()) > LOCAL_PART_MAX:
        raise _invalid(address, f"the part before the @ is longer than {LOCAL_PART_MAX} bytes")
    return f"{_local_key(local)}@{_domain_key(address, domain)}"


def legacy_email_key(email: str) -> str:
    """The key of the rule before this one (NFKC + casefold): only for reviewing old stores."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


def _check_characters(address: str) -> None:
    for char in address:
        if _is_invisible(char):
            raise _invalid(address, f"it holds an invisible character ({_name(char)})")
        if char.isspace():
            raise _invalid(address, f"it holds a space ({_name(char)})")


def _why_not(local: str, at: str, domain: str) -> str:
    """Why ``local@domain`` is not an address (given that it is not)."""
    if not at:
        return "it has no @ (an address is name@domain)"
    if local.startswith('"'):
        return 'a quoted local part ("...") is not accepted; use a plain one'
    if "@" in local:
        return "it has more than one @"
    if not local:
        return "nothing comes before the @"
    if not domain:
        return "nothing comes after the @"
    if domain.startswith("["):
        return "an address literal ([...]) is not a domain name; use the domain"
    for char in local:
        if char.isascii() and char != "." and char not in _ATEXT:
            return f"the part before the @ may not hold {char!r}"
    return "the part before the @ may not start or end with a dot, or hold two in a row"


def _local_key(local: str) -> str:
    """ASCII letters lower-cased, the rest compared exactly (as NFC)."""
    lowered = local.translate(_ASCII_LOWER)
    # A lower-case letter may compose with a mark its capital could not (j + caron is ǰ).
    return lowered if lowered.isascii() else unicodedata.normalize("NFC", lowered)


def _domain_key(address: str, domain: str) -> str:
    """The domain's A-label form without a trailing dot, or ValidationError if it is no name."""
    if domain.isascii() and _PLAIN_DOMAIN(lowered := domain.lower()):
        key = lowered
    else:
        try:
            key = _a_label(domain).removesuffix(".")  # the root's dot, however it was written
        except idna.IDNAError as error:
            raise _invalid(
                address, f"the domain {domain!r} is not a valid domain name ({error})"
            ) from None
    last = key.rpartition(".")[2]
    if not last or _NUMBER_LABEL(last):
        reason = "a number (an IP address?)" if last else "empty"
        raise _invalid(address, f"the last label of the domain {domain!r} is {reason}")
    return key


@functools.lru_cache(maxsize=4096)
def _a_label(domain: str) -> str:
    return idna.encode(domain, uts46=True, std3_rules=True, transitional=False).decode()


def _is_invisible(char: str) -> bool:
    if char.isascii():
        return not char.isprintable()
    if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
        return True
    point = ord(char)
    return any(low <= point <= high for low, high in _INVISIBLE_RANGES)


def _name(char: str) -> str:
    unnamed = "a control character" if unicodedata.category(char) == "Cc" else "unnamed"
    return f"U+{ord(char):04X} {unicodedata.name(char, unnamed)}"


def _invalid(address: object, reason: str) -> hutch.ValidationError:
    shown = address if not isinstance(address, str) else _shortened(address)
    return hutch.ValidationError(f"invalid email {shown!r}: {reason}", {"email": reason})


def _shortened(text: str) -> str:
    return text if len(text) <= _QUOTED_MAX else f"{text[:_QUOTED_MAX]}..."
