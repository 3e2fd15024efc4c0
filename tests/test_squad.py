"""SQuAD v2 scoring against hand-computed cases and the known no-answer score."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunetrace.data.readers import load_squad_json
from tunetrace.evaluation.squad import exact_match, normalize_answer, score_question, squad_v2_scores, token_f1

SQUAD_DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "squad-v2" / "dev-v2.0.json"
SQUAD_DEV_ALT = Path("/work/shared/data/squad-v2/dev-v2.0.json")


def test_normalize_drops_articles_punctuation_case_and_spaces():
    """Articles, punctuation, case and extra whitespace are removed as in the official script."""
    assert normalize_answer("  The  Eiffel-Tower, in  Paris! ") == "eiffeltower in paris"
    assert normalize_answer("an apple a day") == "apple day"


def test_exact_match_after_normalisation():
    """'the Normans' and 'Normans.' are an exact match."""
    assert exact_match("the Normans", "Normans.") == 1
    assert exact_match("Normans", "Norman") == 0


def test_token_f1_hand_computed():
    """'10th and 11th centuries' vs 'the 10th century': 1 common token, P=1/2, R=1/4, F1=1/3."""
    assert token_f1("10th and 11th centuries", "the 10th century") == pytest.approx(1 / 3)


def test_empty_answers_score_only_empty_predictions():
    """An unanswerable question scores 1 for "" and 0 for any span."""
    assert score_question([], "") == (1, 1.0)
    assert score_question([], "France") == (0, 0.0)
    assert score_question(["France"], "") == (0, 0.0)


def test_best_gold_answer_is_taken():
    """The maximum over gold answers is used."""
    em, f1 = score_question(["in the 10th and 11th centuries", "10th and 11th centuries"], "10th and 11th centuries")
    assert (em, f1) == (1, 1.0)


def test_breakdown_totals():
    """HasAns/NoAns means and counts on a crafted set of 4 questions."""
    gold = {"a": ["France"], "b": ["the Normans"], "c": [], "d": []}
    predictions = {"a": "France", "b": "Norse", "c": "", "d": "Rollo"}
    scores = squad_v2_scores(gold, predictions)
    assert scores["exact"] == pytest.approx(50.0)
    assert scores["HasAns_exact"] == pytest.approx(50.0) and scores["HasAns_total"] == 2
    assert scores["NoAns_exact"] == pytest.approx(50.0) and scores["NoAns_total"] == 2


def test_missing_prediction_counted():
    """A question without a prediction is scored as "" and counted."""
    scores = squad_v2_scores({"a": ["x"], "b": []}, {"a": "x"})
    assert scores["missing_predictions"] == 1 and scores["exact"] == pytest.approx(100.0)


@pytest.mark.skipif(not (SQUAD_DEV.is_file() or SQUAD_DEV_ALT.is_file()), reason="shared SQuAD v2 dev file absent")
def test_no_answer_baseline_on_squad_v2_dev():
    """Answering "" to every dev question gives the known 50.07 F1 (and EM)."""
    path = SQUAD_DEV if SQUAD_DEV.is_file() else SQUAD_DEV_ALT
    rows = load_squad_json(path)
    scores = squad_v2_scores({r["id"]: r["answers"] for r in rows}, {r["id"]: "" for r in rows})
    assert scores["total"] == 11873
    assert round(scores["f1"], 2) == 50.07
    assert round(scores["exact"], 2) == 50.07
    assert scores["NoAns_f1"] == pytest.approx(100.0) and scores["HasAns_f1"] == 0.0
