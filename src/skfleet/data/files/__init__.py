"""The ``file`` and ``s3`` backend: CSV and Parquet files on local disk or S3.

Local paths and ``s3://`` URLs take the same code path (fsspec; s3fs for S3, with credentials from
the standard AWS chain and ``AWS_ENDPOINT_URL`` for S3-compatible stores); only the filesystem
differs. Reading is :class:`~skfleet.data.files.source.FileSource` (a file, a directory, a glob),
writing is :class:`~skfleet.data.files.sink.FileSink` (a directory of parts plus a manifest) or,
for a URL naming one file (``scores.csv``, no trailing ``/``),
:class:`~skfleet.data.files.single.SingleFileSink`.

Options (both directions): ``format`` (``parquet``, ``csv``, ``csv.gz``; the CLI's ``--format``),
``delimiter`` (CSV) and ``storage_options`` (passed to s3fs).

>>> import tempfile, pyarrow as pa
>>> from skfleet.data import open_sink, open_source
>>> target = tempfile.mkdtemp() + "/scores"
>>> sink = open_sink(target, format="csv")
>>> sink.open(pa.schema([("id", pa.int64()), ("score", pa.float64())]), run_id="demo")
>>> sink.write("p0", pa.table({"id": [1, 2], "score": [0.25, 0.75]}))
2
>>> sink.commit()
>>> source = open_source(target)
>>> type(source).__name__, source.format.name, source.read_all().num_rows
('FileSource', 'csv', 2)
"""

from __future__ import annotations

from typing import Any

from skfleet.data.files.single import SingleFileSink, names_one_file
from skfleet.data.files.sink import FileSink
from skfleet.data.files.source import FileSource
from skfleet.data.registry import Backend

__all__ = ["FileBackend", "FileSink", "FileSource", "SingleFileSink"]


class FileBackend(Backend):
    """Opens :class:`FileSource` / :class:`FileSink` for plain paths, ``file://`` and ``s3://``."""

    source_class = FileSource
    sink_class = FileSink

    @classmethod
    def sink(cls, url: str, **options: Any) -> FileSink:
        # A URL naming one data file (``scores.csv``) gets that file, written whole at commit;
        # anything else is a folder of parts.
        if names_one_file(url, options.get("storage_options")):
            return SingleFileSink(url, **options)
        return super().sink(url, **options)
