"""``skfleet predict`` through the CLI: JSON summary, and bad input as one line, exit 2, output
untouched."""

from __future__ import annotations

import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from skfleet.cli import main
from tests.predict.conftest import ROWS, read_sorted
from tests.predict.models import make_rows, save_classifier, write_parquet_dir


def run_cli(*args: str):
    result = CliRunner().invoke(main, ["predict", *args])
    return result.exit_code, result.stdout, result.stderr


def run_local(model: str, data: str, out, store, *flags: str):
    """``skfleet predict MODEL DATA --out OUT`` from the test's store on the local engine."""
    return run_cli(
        model, data, "--out", str(out), "--store", store.uri, "--engine", "local", *flags
    )


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    # The progress bar may come first; the error is one line, and the last.
    errors = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.strip().endswith(errors[0]), err
    return errors[0]


def test_json_summary(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    out = str(tmp_path / "scores")
    code, stdout, err = run_local(ref, parquet_in, out, store, "--partition-rows", "1000", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert {
        "run_id",
        "rows_in",
        "rows_out",
        "partitions",
        "seconds",
        "rows_per_second",
        "drift",
    } <= set(summary)
    assert summary["rows_in"] == summary["rows_out"] == ROWS and summary["partitions"] == 6
    assert read_sorted(out).num_rows == ROWS


def test_text_summary_and_columns_flag(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    out = str(tmp_path / "scores")
    code, stdout, err = run_local(ref, parquet_in, out, store, "--columns", "prediction,proba_late")
    assert code == 0, err
    assert f"scored {ROWS:,} rows" in stdout
    assert read_sorted(out).column_names == ["id", "prediction", "proba_late"]


def test_model_not_found(tmp_path, store, parquet_in):
    code, _, err = run_local("nosuchmodel@3", parquet_in, tmp_path / "o", store)
    assert "nosuchmodel" in one_line_error(code, err)
    assert not (tmp_path / "o").exists()


def test_missing_required_columns_are_listed(tmp_path, store, rows):
    ref = save_classifier(store, rows)
    thin = tmp_path / "thin.parquet"
    pq.write_table(rows.select(["id", "x0", "x2"]), thin)
    code, _, err = run_local(ref, str(thin), tmp_path / "o", store)
    line = one_line_error(code, err)
    assert "x1, city" in line and "thin.parquet" in line
    assert not (tmp_path / "o").exists()


def test_missing_key_column(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    code, _, err = run_local(ref, parquet_in, tmp_path / "o", store, "--key", "flight_no")
    assert "flight_no" in one_line_error(code, err)


def test_unknown_output_column(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    code, _, err = run_local(ref, parquet_in, tmp_path / "o", store, "--columns", "proba_maybe")
    line = one_line_error(code, err)
    assert "proba_maybe" in line and "proba_late" in line


@pytest.fixture
def duplicated_in(tmp_path, rows):
    """Ids 0..5999, then 100 of them again in another file (and 2 repeats inside one file)."""
    again = make_rows(100, start=0)
    inner = pa.concat_tables([make_rows(1_000, start=10_000), make_rows(2, start=10_000)])
    path = write_parquet_dir(tmp_path / "dup", rows, files=3, row_group_size=500)
    pq.write_table(again, tmp_path / "dup" / "part-98.parquet")
    pq.write_table(inner, tmp_path / "dup" / "part-99.parquet")
    return path


def test_duplicate_keys_warn_by_default(tmp_path, store, rows, duplicated_in):
    ref = save_classifier(store, rows)
    out = str(tmp_path / "o")
    code, _, err = run_local(ref, duplicated_in, out, store, "--json")
    assert code == 0, err
    assert "warning: key column 'id' is not unique in the input: 102 rows repeat a key" in err
    assert read_sorted(out).num_rows == ROWS + 1_102


def test_duplicate_keys_error_leaves_no_output(tmp_path, store, rows, duplicated_in):
    ref = save_classifier(store, rows)
    out = tmp_path / "o"
    code, _, err = run_local(ref, duplicated_in, out, store, "--duplicate-keys", "error")
    assert "key column 'id' is not unique" in one_line_error(code, err)
    assert not out.exists()


def test_duplicate_keys_across_partitions_only(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    pq.write_table(make_rows(3, start=5), tmp_path / "in" / "part-50.parquet")
    out = tmp_path / "o"
    code, _, err = run_local(ref, parquet_in, out, store, "--duplicate-keys", "error")
    assert "3 rows repeat a key" in one_line_error(code, err)
    assert not out.exists()
    code, _, err = run_local(ref, parquet_in, out, store, "--duplicate-keys", "ignore")
    assert code == 0 and "warning" not in err


def test_existing_output_with_if_exists_fail(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    out = str(tmp_path / "o")
    assert run_local(ref, parquet_in, out, store)[0] == 0
    before = read_sorted(out)
    other = tmp_path / "other.parquet"
    pq.write_table(make_rows(10, start=50_000), other)
    code, _, err = run_local(ref, str(other), out, store)
    assert "exists" in one_line_error(code, err)
    assert read_sorted(out).equals(before)


def test_unwritable_file_output(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    code, _, err = run_local(ref, parquet_in, blocker / "scores", store)
    assert "afile" in one_line_error(code, err)
    assert blocker.read_text() == "not a directory"


def test_unwritable_postgres_output_untouched(pg, store, rows, parquet_in):
    """A role that may read the output table but not write it: exit 2, the table unchanged."""
    ref = save_classifier(store, rows)
    name = f"scores_{uuid.uuid4().hex[:8]}"
    url = pg.table_url(f"public.{name}")
    assert run_local(ref, parquet_in, url, store)[0] == 0
    before = read_sorted(url)
    role, password = f"reader_{uuid.uuid4().hex[:8]}", "r3ader-secret"
    with pg.connect() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # the default since PG 15
        conn.execute(f"GRANT SELECT ON public.{name} TO {role}")
    reader_url = f"postgresql://{role}:{password}@{pg.host}:{pg.port}/postgres?table=public.{name}"
    code, out, err = run_local(ref, parquet_in, reader_url, store, "--if-exists", "replace")
    line = one_line_error(code, err)
    assert "permission denied" in line and role in line, line
    assert password not in out + err
    assert read_sorted(url).equals(before)


def test_bad_engine_is_exit_2(tmp_path, store, rows, parquet_in):
    ref = save_classifier(store, rows)
    code, _, err = run_cli(
        ref, parquet_in, "--out", str(tmp_path / "o"), "--store", store.uri, "--engine", "yarn"
    )
    assert "--engine" in one_line_error(code, err)
