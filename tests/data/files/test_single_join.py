"""A single Parquet file is its run's staged parts laid end to end under one new footer
(``parquet_format.write_joined``): the same rows, types, row groups and statistics as decoding the
parts and writing them again, and the slow path still taken when the parts cannot be joined."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skfleet.data import open_sink, open_source
from skfleet.data.files.parquet_format import ParquetFormat, write_joined
from skfleet.data.files.store import FileStore
from skfleet.data.testing.tables import id_table, typed_table


def parquet_bytes(table: pa.Table, **options) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **options)
    return sink.getvalue().to_pybytes()


def join_files(folder, blobs: list[bytes]) -> bytes | None:
    """``blobs`` written as files into ``folder`` and joined; None when they cannot be."""
    paths = []
    for index, blob in enumerate(blobs):
        (folder / f"{index}.parquet").write_bytes(blob)
        paths.append(str(folder / f"{index}.parquet"))
    out = io.BytesIO()
    if not write_joined(FileStore("file"), paths, out):
        assert out.getvalue() == b""  # nothing written before it knew
        return None
    return out.getvalue()


def write_single(target: str, tables: list[pa.Table], if_exists: str = "fail") -> None:
    sink = open_sink(target)
    sink.open(tables[0].schema, if_exists=if_exists)
    for index, table in reversed(list(enumerate(tables))):  # receipts, not arrival, set the order
        sink.write(f"p{index:03d}", table)
    sink.commit()


def wide(n: int, start: int) -> pa.Table:
    rng = np.random.default_rng(start)
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.table(
        {
            "id": ids,
            "x": rng.normal(size=n),
            "level": pa.array([f"level_{v % 5}" for v in ids]).dictionary_encode(),
            "text": pa.array([None if v % 11 == 0 else f"{v:x}" * (v % 9) for v in ids]),
        }
    )


def test_every_type_reads_back_as_decoding_would(tmp_path):
    rows = typed_table()
    parts = [rows.slice(i, 1) for i in range(rows.num_rows)] + [rows.slice(0, 0)]
    target = str(tmp_path / "t.parquet")
    write_single(target, parts)
    joined = pq.ParquetFile(target)
    assert joined.read().equals(rows)
    assert joined.metadata.num_row_groups == len(parts)
    out = io.BytesIO()
    ParquetFormat().write_parts_to(rows.schema, parts, out)
    decoded = pq.ParquetFile(pa.BufferReader(out.getvalue()))
    assert joined.schema_arrow.equals(decoded.schema_arrow, check_metadata=True)
    for group in range(joined.metadata.num_row_groups):
        for column in range(joined.metadata.num_columns):
            ours = joined.metadata.row_group(group).column(column).statistics
            theirs = decoded.metadata.row_group(group).column(column).statistics
            assert (ours is None) == (theirs is None)
            if ours is not None and ours.has_min_max:
                assert (ours.min, ours.max, ours.null_count) == (
                    theirs.min,
                    theirs.max,
                    theirs.null_count,
                )


def test_many_parts_with_dictionaries_and_page_indexes(tmp_path):
    tables = [wide(997 + i, start=i * 10_000) for i in range(40)]  # > 15: a long list header
    joined = join_files(tmp_path, [parquet_bytes(t, write_page_index=True) for t in tables])
    file = pq.ParquetFile(pa.BufferReader(joined))
    assert file.metadata.num_row_groups == 40
    assert file.read().equals(pa.concat_tables(tables))
    for group in (0, 17, 39):  # each row group found where its own footer entry says
        assert file.read_row_group(group).equals(tables[group])
    filtered = pq.read_table(pa.BufferReader(joined), filters=[("id", ">=", 390_000)])
    assert filtered["id"].to_pylist() == tables[39]["id"].to_pylist()


def test_partitions_of_the_file_are_its_row_groups(tmp_path):
    target = str(tmp_path / "t.parquet")
    write_single(target, [id_table(1_000, start=i * 1_000) for i in range(6)])
    with open_source(target) as source:
        parts = source.partitions(2_000)
        assert len(parts) == 3
        got = pa.concat_tables(source.read(p) for p in parts)
    assert got["id"].to_pylist() == list(range(6_000))


def test_append_joins_with_a_file_of_this_schema(tmp_path):
    target = str(tmp_path / "t.parquet")
    write_single(target, [id_table(5), id_table(5, start=5)])
    write_single(target, [id_table(3, start=10)], if_exists="append")
    file = pq.ParquetFile(target)
    assert file.metadata.num_row_groups == 3  # the old file's row groups kept as they were
    assert file.read()["id"].to_pylist() == list(range(13))


def test_append_to_a_file_written_elsewhere_decodes_it(tmp_path):
    target = tmp_path / "t.parquet"
    pd.DataFrame(id_table(4).to_pandas()).to_parquet(target)  # pandas metadata, its own writer
    write_single(str(target), [id_table(2, start=4)], if_exists="append")
    assert pd.read_parquet(target)["id"].tolist() == list(range(6))


@pytest.mark.parametrize(
    "blobs",
    [
        [b"not a parquet file"],
        [parquet_bytes(id_table(2)), parquet_bytes(pa.table({"other": [1]}))],
        [parquet_bytes(id_table(2)), parquet_bytes(id_table(2), compression="none")[:-12]],
        [],
    ],
    ids=["not-parquet", "other-schema", "truncated", "none"],
)
def test_what_cannot_be_joined_is_left_to_decoding(blobs, tmp_path):
    assert join_files(tmp_path, blobs) is None
