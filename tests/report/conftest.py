"""Reports are built once per session: rendering dozens of figures is the slow part."""

import pytest

from skfleet.report import build_report
from tests.report.reports import classifier_data, regressor_data, streamed_data


@pytest.fixture(scope="session")
def binary_html():
    return build_report(classifier_data(["on time", "late"]))


@pytest.fixture(scope="session")
def three_class_html():
    return build_report(classifier_data(["AA", "DL", "UA"], seed=1))


@pytest.fixture(scope="session")
def regressor_html():
    return build_report(regressor_data())


@pytest.fixture(scope="session")
def streamed_html():
    return build_report(streamed_data())
