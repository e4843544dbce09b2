"""predictions_<split>.tsv: what write_predictions writes, read_predictions reads back; bad tables name the line."""

from __future__ import annotations

import numpy as np
import pytest

from genoml.data import LabelSpace
from genoml.errors import InputError
from genoml.predictions import read_predictions, write_predictions


def test_binary_table_round_trip(tmp_path):
    path = tmp_path / "predictions_test.tsv"
    scores = np.array([[0.9, 0.1], [0.25, 0.75]])
    write_predictions(
        path, ["a", "b"], scores, LabelSpace("binary", ["neg", "pos"]), true_labels=["neg", "neg"]
    )
    assert (
        path.read_text()
        == "id\ttrue_label\tpredicted\tprob_neg\tprob_pos\na\tneg\tneg\t0.9\t0.1\nb\tneg\tpos\t0.25\t0.75\n"
    )
    table = read_predictions(path)
    assert (
        table.ids == ["a", "b"] and table.true_labels == ["neg", "neg"] and table.predicted == ["neg", "pos"]
    )
    assert table.columns == ["prob_neg", "prob_pos"]
    np.testing.assert_array_equal(table.scores, scores)


def test_regression_table_has_one_value_column(tmp_path):
    path = tmp_path / "p.tsv"
    write_predictions(path, ["a"], np.array([[1.5]]), LabelSpace("regression", ["value"]))
    table = read_predictions(path)
    assert table.columns == ["value"] and table.scores.shape == (1, 1) and table.predicted == ["1.5"]


def test_empty_split_reads_as_no_rows(tmp_path):
    path = tmp_path / "p.tsv"
    write_predictions(path, [], np.zeros((0, 2)), LabelSpace("binary", ["0", "1"]))
    table = read_predictions(path)
    assert table.ids == [] and table.scores.shape == (0, 2)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "p.tsv:1: expected the columns id, true_label, predicted"),
        ("id\tprob_1\n", "p.tsv:1: expected the columns"),
        ("id\ttrue_label\tpredicted\tprob_1\na\t1\t1\n", "p.tsv:2: 3 columns, expected 4"),
        ("id\ttrue_label\tpredicted\tprob_1\na\t1\t1\thigh\n", "p.tsv:2: a score that is not a number"),
    ],
)
def test_bad_tables_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "p.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message.replace(".", r"\.")):
        read_predictions(path)
