"""Model names and references: ``NAME`` (the latest version), ``NAME@3``, ``NAME@latest`` and
``NAME@ALIAS`` (the version an alias such as ``champion`` points at; see :mod:`skfleet.store.aliases`).

A name is also a folder (or key prefix) in the store, so it is held to a safe alphabet: it starts
with a letter or digit, continues with letters, digits, ``_``, ``.`` or ``-``, has no ``..`` and is
at most 100 characters long.

>>> parse_model_ref("churn")
ParsedRef(name='churn', version=None, alias=None)
>>> parse_model_ref("churn@3")
ParsedRef(name='churn', version=3, alias=None)
>>> parse_model_ref("churn@latest").version is None
True
>>> parse_model_ref("churn@champion")
ParsedRef(name='churn', version=None, alias='champion')
>>> parse_model_ref("../etc")
Traceback (most recent call last):
...
skfleet.errors.UsageError: model name '../etc' is not allowed: use letters, digits, '_', '.' or '-', starting with a letter or digit, without '..' (at most 100 characters)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from skfleet.errors import UsageError

MAX_NAME_LENGTH = 100
#: The files of every stored version: the artifact, and the metadata whose presence makes the
#: version exist (it is written last).
ARTIFACT_FILE = "model.skops"
METADATA_FILE = "model.json"
#: A model name and a file kept next to a version: letters, digits, ``_.-``, no leading dot.
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
#: An alias starts with a letter, so it never reads as a version number.
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*\Z")
#: Words a reference gives a meaning of its own, so no alias may take them.
RESERVED_ALIASES = ("latest",)


@dataclass(frozen=True)
class ModelRef:
    """One stored version of a model: its name, its version number and where it lives.

    >>> ModelRef("churn", 3, "s3://bucket/models/churn/3")
    ModelRef(name='churn', version=3, uri='s3://bucket/models/churn/3')
    >>> str(ModelRef("churn", 3, "./skfleet-models/churn/3"))
    'churn@3'
    """

    name: str
    version: int
    uri: str

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class ParsedRef(NamedTuple):
    """A reference as the user wrote it; ``version`` is None for the latest or an alias."""

    name: str
    version: int | None
    alias: str | None = None


def _plain(name: object) -> bool:
    """A string of at most ``MAX_NAME_LENGTH`` characters, no ``..``, matching ``_PLAIN``."""
    return (
        isinstance(name, str)
        and len(name) <= MAX_NAME_LENGTH
        and ".." not in name
        and _PLAIN.match(name) is not None
    )


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`UsageError` naming it.

    >>> validate_name("flights_delay-v2.1")
    'flights_delay-v2.1'
    >>> validate_name("a/b")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: model name 'a/b' is not allowed: use letters, digits, '_', '.' or '-', starting with a letter or digit, without '..' (at most 100 characters)
    """
    if not _plain(name):
        raise UsageError(
            f"model name {name!r} is not allowed: use letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit, without '..' (at most {MAX_NAME_LENGTH} characters)"
        )
    return name


def validate_file_name(file_name: object) -> str:
    """A file kept next to a model (``report.html``) must be a plain name, not a path.

    >>> validate_file_name("oof.parquet")
    'oof.parquet'
    >>> validate_file_name("../model.json")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: file name '../model.json' is not allowed in a model version: use a plain name such as 'report.html'
    """
    if not _plain(file_name):
        raise UsageError(
            f"file name {file_name!r} is not allowed in a model version: "
            "use a plain name such as 'report.html'"
        )
    return file_name


def validate_alias(alias: object) -> str:
    """Return ``alias`` if it can name an alias, else raise :class:`UsageError` naming it.

    >>> validate_alias("champion")
    'champion'
    >>> validate_alias("3")
    Traceback (most recent call last):
    ...
    skfleet.errors.UsageError: alias '3' is not allowed: use letters, digits, '_', '.' or '-', starting with a letter (a number is a version, and 'latest' means the newest version)
    """
    if (
        not isinstance(alias, str)
        or alias in RESERVED_ALIASES
        or len(alias) > MAX_NAME_LENGTH
        or ".." in alias
        or _ALIAS.match(alias) is None
    ):
        raise UsageError(
            f"alias {alias!r} is not allowed: use letters, digits, '_', '.' or '-', starting with "
            "a letter (a number is a version, and 'latest' means the newest version)"
        )
    return alias


def passes(validate: Callable[[object], str], value: object) -> bool:
    """Whether ``validate`` (:func:`validate_name`, :func:`validate_alias`) accepts ``value``:
    a listing skips what a user could not have named.

    >>> passes(validate_name, "line"), passes(validate_alias, "3")
    (True, False)
    """
    try:
        validate(value)
    except UsageError:
        return False
    return True


def parse_model_ref(ref: str | ModelRef) -> ParsedRef:
    """Split ``NAME``, ``NAME@V``, ``NAME@latest`` or ``NAME@ALIAS`` into name, version (None =
    latest) and alias."""
    if isinstance(ref, ModelRef):
        return ParsedRef(ref.name, ref.version)
    if not isinstance(ref, str):
        raise UsageError(f"model reference {ref!r} is not a string like 'NAME' or 'NAME@3'")
    name, sep, version_text = ref.partition("@")
    validate_name(name)
    if not sep or version_text == "latest":
        return ParsedRef(name, None)
    if version_text.isascii() and version_text[:1].isalpha():
        try:
            return ParsedRef(name, None, validate_alias(version_text))
        except UsageError:
            pass  # worded below, as for any other bad version
    if not version_text.isascii() or not version_text.isdigit() or int(version_text) < 1:
        raise UsageError(
            f"model reference {ref!r} has a bad version {version_text!r}: "
            "use NAME, NAME@latest, NAME@<number starting at 1> or NAME@<alias>"
        )
    return ParsedRef(name, int(version_text))


def is_version(text: str) -> bool:
    """Whether ``text`` is a version folder name (``1``, ``12``; not ``01`` or ``0``).

    >>> is_version("12"), is_version("012"), is_version("0")
    (True, False, False)
    """
    return text.isascii() and text.isdigit() and str(int(text)) == text and int(text) > 0


def is_version_path(path: str) -> bool:
    return is_version(path.rstrip("/").rsplit("/", 1)[-1])
