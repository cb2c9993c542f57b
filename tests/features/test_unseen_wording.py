"""The drift summary says what each table step really does with a level it never saw."""

import pyarrow as pa
import pytest

from skfleet.features import DriftReport, TableEncoder
from skfleet.features.codes import TableCodes, TableOrdinal
from skfleet.features.frame import TableFrame

TRAIN = pa.table({"cut": ["Good", "Ideal", "Good", "Ideal"], "carat": [0.3, 1.1, 0.7, 0.9]})
LATER = pa.table({"cut": ["Fair", "Good"], "carat": [0.5, 0.6]})


def _line(report: DriftReport) -> str:
    (line,) = [x for x in report.lines() if x.startswith("unseen levels in 'cut'")]
    return line


def test_encoder_sends_unseen_levels_to_other():
    step = TableEncoder().fit(TRAIN)
    features, report = step.transform_with_drift(LATER)
    other = list(step.get_feature_names_out()).index("cut=__other__")
    assert features[0, other] == 1.0 and features[1, other] == 0.0
    assert _line(report).endswith("encoded as __other__")


def test_frame_passes_unseen_levels_on_unchanged():
    frame, report = TableFrame().fit(TRAIN).transform_with_drift(LATER)
    assert frame["cut"].tolist() == ["Fair", "Good"]
    assert _line(report).endswith("passed on unchanged to the model's own encoding")
    assert "__other__" not in report.summary()


@pytest.mark.parametrize("step", [TableCodes, TableOrdinal])
def test_codes_give_unseen_levels_as_missing(step):
    frame, report = step().fit(TRAIN).transform_with_drift(LATER)
    assert frame["cut"].isna().tolist() == [True, False]
    assert _line(report).endswith("given to the model as missing values")


def test_the_wording_survives_a_run_record_and_merges():
    _, a = TableCodes().fit(TRAIN).transform_with_drift(LATER)
    b = DriftReport.from_dict(a.to_dict())
    assert b == a and b.merge(DriftReport(n_rows=3)).unseen_as == a.unseen_as
    # Records written before the field existed came from the encoder's wording.
    old = {k: v for k, v in a.to_dict().items() if k != "unseen_as"}
    assert DriftReport.from_dict(old).lines()[0].endswith("encoded as __other__")
