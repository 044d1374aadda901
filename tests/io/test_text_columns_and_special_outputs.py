"""Issue 21 item 21 (messages): a CSV's text columns stay text, and an output path that is a
device names what it is."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from galmet.errors import ConfigError
from galmet.io.safety import check_output_file
from galmet.io.tables import CSV_TEXT_COLUMNS, read_table


@pytest.mark.parametrize("column", sorted(CSV_TEXT_COLUMNS))
def test_csv_text_columns_read_as_text(tmp_path, column):
    value = "0" * 64 if column == "model_sha256" else "0001"
    path = tmp_path / "p.csv"
    pd.DataFrame({"objID": [1, 2], "oh_p50_pred": [8.5, 8.6], column: [value, value]}).to_csv(path, index=False)
    df = read_table(path)
    assert list(df[column]) == [value, value]
    if column == "model_sha256":
        assert df.attrs["provenance"]["model_sha256"] == value


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
@pytest.mark.parametrize(
    ("fmt", "what", "kind"),
    [("json", "metrics file", "metrics"), ("csv", "predictions table", None), ("bundle", "model bundle", None)],
)
def test_an_output_at_a_device_names_the_device(fmt, what, kind):
    with pytest.raises(ConfigError, match=rf"^out /dev/null: is a character device, not a file to write the {what} in"):
        check_output_file("/dev/null", "out", fmt, what, kind=kind)


def test_evaluate_json_at_a_device_is_named_a_metrics_file(tmp_path, capsys):
    from galmet.cli.main import main

    pred = tmp_path / "p.csv"
    pd.DataFrame({"objID": [1, 2], "oh_p50": [8.5, 8.6], "oh_p50_pred": [8.5, 8.7]}).to_csv(pred, index=False)
    assert main(["evaluate", str(pred), "--json", "/dev/null"]) == 2
    assert "is a character device, not a file to write the metrics file in" in capsys.readouterr().err
