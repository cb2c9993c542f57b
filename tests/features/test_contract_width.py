"""ColumnSpec.width counts exactly the names output_names builds, for every kind of column."""

import pyarrow as pa

from skfleet.features import TableEncoder


def test_width_equals_number_of_output_names():
    table = pa.table(
        {
            "x": [1.0, None, 3.0, 4.0],
            "flag": [True, False, None, True],
            "origin": ["JFK", "EWR", None, "JFK"],
            "tail": ["N1", "N2", "N3", "N4"],
            "at": pa.array([0, 3_600_000_000, None, 7_200_000_000], pa.timestamp("us", tz="UTC")),
        }
    )
    encoder = TableEncoder(hash=["tail"], hash_features=64).fit(table)
    specs = encoder.contract_.columns
    assert {s.kind for s in specs} >= {"numeric", "boolean", "categorical", "datetime"}
    assert any(s.hash is not None for s in specs) and any(s.indicator for s in specs)
    for spec in specs:
        assert spec.width == len(spec.output_names()), spec.name
