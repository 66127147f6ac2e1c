from __future__ import annotations

import pytest

from eval.calibration import expected_calibration_error, reliability, risk_coverage


def test_ece_of_hand_made_bins():
    # bin 0.1-0.2: conf 0.15 x2, one right -> |0.15 - 0.5| = 0.35, weight 2/4
    # bin 0.9-1.0: conf 0.95 x2, both right -> |0.95 - 1.0| = 0.05, weight 2/4
    conf = [0.15, 0.15, 0.95, 0.95]
    right = [True, False, True, True]
    assert expected_calibration_error(conf, right) == pytest.approx(0.5 * 0.35 + 0.5 * 0.05)
    rows = reliability(conf, right)
    assert [(r["lo"], r["n"], r["accuracy"]) for r in rows] == [(0.1, 2, 0.5), (0.9, 2, 1.0)]


def test_confidence_one_falls_in_the_last_bin_and_empty_input_has_no_ece():
    assert reliability([1.0], [True])[0]["lo"] == 0.9
    assert expected_calibration_error([], []) is None


def test_risk_coverage_answers_the_most_confident_first():
    assert risk_coverage([0.9, 0.2, 0.6], [True, False, False]) == [
        (pytest.approx(1 / 3), 0.0), (pytest.approx(2 / 3), 0.5), (1.0, pytest.approx(2 / 3))]
