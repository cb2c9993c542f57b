"""Whether a run may write into a folder that already holds something (``--if-exists``).

``replace`` replaces only a previous skfleet output: everything in the folder must be listed by
its manifest. ``append`` needs the same format and the same columns (and, with a manifest, the
same types) as what is there.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from skfleet.data.files.formats import FORMAT_FLAG, FileFormat
from skfleet.data.files.manifest import Manifest
from skfleet.errors import DataError, UsageError

#: Files named when a target holds what skfleet did not write.
_SHOWN = 3


def check_replaceable(sink: Any, manifest: Manifest | None, files: list[str]) -> None:
    """Replace only what a previous skfleet output lists: refuse anything else.

    ``sink`` is the :class:`~skfleet.data.files.sink.FileSink` opening the folder, ``files`` the
    paths in it (the manifest itself left out).
    """
    base = sink._dir.rstrip("/")
    listed = {p.path for p in manifest.parts} if manifest is not None else set()
    foreign = [f[len(base) :].lstrip("/") for f in files]
    foreign = [f for f in foreign if f not in listed]
    if not foreign:
        return
    shown = ", ".join(foreign[:_SHOWN]) + (", ..." if len(foreign) > _SHOWN else "")
    what = "files skfleet did not write" if manifest is not None else "files but no skfleet output"
    raise UsageError(
        f"--if-exists replace refused: {sink.display_name} holds {what} ({shown}); "
        "it replaces only a previous skfleet output, so remove them or pick another --out"
    )


def check_appendable(
    sink: Any, manifest: Manifest | None, fmt: FileFormat, schema: pa.Schema
) -> None:
    """Rows of ``schema`` written as ``fmt`` may join what ``sink``'s target holds."""
    if manifest is not None:
        old_format, old_schema = manifest.format, manifest.schema
    else:
        from skfleet.data.files.source import FileSource

        existing = FileSource(sink.url, storage_options=sink.store.storage_options)
        old_format, old_schema = existing.format.name, existing.schema()
    if old_format != fmt.name:
        raise UsageError(
            f"{sink.display_name} holds {old_format} files; cannot append {fmt.name} "
            f"(check {FORMAT_FLAG})"
        )
    if old_schema.names != schema.names:
        raise DataError(
            f"cannot append to {sink.display_name}: its columns are "
            f"{old_schema.names}, the new rows have {schema.names}"
        )
    if manifest is not None:
        for old, new in zip(old_schema, schema, strict=True):
            if old.type != new.type:
                raise DataError(
                    f"cannot append to {sink.display_name}: column {new.name!r} is "
                    f"{old.type} there and {new.type} in the new rows"
                )
