"""SQuAD v2 scoring: the official answer normalisation, exact match and F1, HasAns/NoAns breakdown.

Pure functions, following the official `evaluate-v2.0.py`: an unanswerable question has the single
gold answer "" and scores 1 only when the prediction is empty too; each question takes the maximum
over its gold answers; totals are means in percent.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Iterable, Mapping
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace (official order)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact_match(gold: str, prediction: str) -> int:
    """1 when the normalised strings are equal."""
    return int(normalize_answer(gold) == normalize_answer(prediction))


def token_f1(gold: str, prediction: str) -> float:
    """Bag-of-tokens F1 of the normalised strings; an empty side scores 1 only if both are empty."""
    gold_tokens, pred_tokens = _tokens(gold), _tokens(prediction)
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    common = collections.Counter(gold_tokens) & collections.Counter(pred_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def gold_answers(answers: Iterable[str]) -> list[str]:
    """Gold answer texts whose normalised form is not empty; [""] for an unanswerable question."""
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def score_question(answers: Iterable[str], prediction: str) -> tuple[int, float]:
    """(EM, F1) of one prediction: the best over the gold answers."""
    golds = gold_answers(answers)
    return max(exact_match(g, prediction) for g in golds), max(token_f1(g, prediction) for g in golds)


def squad_v2_scores(gold: Mapping[str, list[str]], predictions: Mapping[str, str]) -> dict[str, Any]:
    """Official-style totals in percent: exact, f1, and the HasAns_/NoAns_ breakdown with counts.

    `gold` maps question id to its answer texts ([] when unanswerable); a question missing from
    `predictions` counts as answered "" (the official script counts it as missing and scores 0;
    we score it and report the number in `missing_predictions`).
    """
    em: dict[str, int] = {}
    f1: dict[str, float] = {}
    for qid, answers in gold.items():
        em[qid], f1[qid] = score_question(answers, predictions.get(qid, ""))
    has_ans = [q for q, a in gold.items() if any(normalize_answer(x) for x in a)]
    no_ans = [q for q in gold if q not in set(has_ans)]

    def mean(values: dict, ids: list[str]) -> float:
        return 100.0 * sum(values[q] for q in ids) / len(ids) if ids else 0.0

    result: dict[str, Any] = {
        "exact": mean(em, list(gold)),
        "f1": mean(f1, list(gold)),
        "total": len(gold),
        "missing_predictions": sum(q not in predictions for q in gold),
    }
    for prefix, ids in (("HasAns", has_ans), ("NoAns", no_ans)):
        if ids:
            result.update(
                {f"{prefix}_exact": mean(em, ids), f"{prefix}_f1": mean(f1, ids), f"{prefix}_total": len(ids)}
            )
    return result
