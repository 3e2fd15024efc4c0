"""Task types: sentence pairs, the registry, stratified splits."""

from __future__ import annotations

from pathlib import Path

from tunetrace import artifacts as A
from tunetrace.config import ModelSpec, TaskSpec
from tunetrace.models.loading import load_tokenizer
from tunetrace.stages.prepare import load_splits
from tunetrace.tasks.encoding import encode_classification


def _write_rte_like(path: Path) -> Path:
    """A GLUE-layout pair TSV with a raw quote character (GLUE files are not CSV-quoted)."""
    rows = [
        "index\tsentence1\tsentence2\tlabel",
        '0\tHe said "stop now and wait.\tHe spoke.\tentailment',
        "1\tThe cat sat on the mat.\tNo animal sat.\tnot_entailment",
        "2\tRain fell all day in Oslo.\tIt rained in Oslo.\tentailment",
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _pair_task(path: Path) -> TaskSpec:
    return TaskSpec.from_dict(
        "rte",
        {
            "source": {"train": str(path), "eval": str(path), "format": "tsv", "quoting": "none"},
            "text_fields": ["sentence1", "sentence2"],
            "label_field": "label",
            "labels": ["not_entailment", "entailment"],
            "id_field": "index",
        },
    )


def test_sentence_pair_columns_keep_raw_quotes(tmp_path):
    """Both fields of a GLUE pair TSV land in text/text_pair with the raw quote kept."""
    train, _, _ = load_splits(_pair_task(_write_rte_like(tmp_path / "rte.tsv")))
    assert train.loc[0, A.COL_TEXT] == 'He said "stop now and wait.'
    assert train.loc[0, A.COL_TEXT_PAIR] == "He spoke."
    assert train[A.COL_LABEL].tolist() == [1, 0, 1]


def test_sentence_pair_encoding_has_two_segments(tmp_path):
    """A pair is encoded as [CLS] a [SEP] b [SEP] with token types 0 then 1."""
    train, _, _ = load_splits(_pair_task(_write_rte_like(tmp_path / "rte.tsv")))
    tokenizer = load_tokenizer(ModelSpec.from_dict({}))
    dataset, truncated = encode_classification(train, tokenizer, 64)
    item = dataset[1]
    assert item["input_ids"].count(tokenizer.sep_token_id) == 2
    assert set(item["token_type_ids"]) == {0, 1} and truncated == 0


def test_sentence_pair_truncation_counted(tmp_path):
    """Pairs longer than max_length are truncated and counted."""
    train, _, _ = load_splits(_pair_task(_write_rte_like(tmp_path / "rte.tsv")))
    dataset, truncated = encode_classification(train, load_tokenizer(ModelSpec.from_dict({})), 8)
    assert truncated == 3 and all(len(dataset[i]["input_ids"]) == 8 for i in range(3))


def _config_with(task: dict) -> dict:
    return {"model": {}, "tasks": {"t": task}, "methods": {"full": {"type": "full"}}, "seeds": [0]}


def test_distribution_without_options_fails_validation():
    """A distribution task without options is rejected naming tasks.t.options."""
    import pytest

    from tunetrace.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match=r"tasks\.t\.options"):
        validate_config(_config_with({"type": "distribution", "source": {"train": "x.jsonl"}}))


def test_label_words_must_match_labels():
    """label_words of another length than labels is rejected naming the key."""
    import pytest

    from tunetrace.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match=r"tasks\.t\.label_words"):
        validate_config(
            _config_with(
                {
                    "type": "generative_classification",
                    "source": {"train": "x.csv"},
                    "labels": ["a", "b"],
                    "label_words": ["x"],
                }
            )
        )


def test_unknown_task_type_names_the_allowed_ones():
    """An unknown type lists the registered task types."""
    import pytest

    from tunetrace.config import ConfigError, validate_config

    with pytest.raises(ConfigError, match="causal_lm.*distribution"):
        validate_config(_config_with({"type": "seq2seq", "source": {"train": "x.csv"}}))


def test_registry_covers_schema_task_types():
    """The schema's task types are exactly the registry's, and its primary metrics cover every type's metrics."""
    from tunetrace.config import load_schema
    from tunetrace.registry import entry, task_type_names

    properties = load_schema()["$defs"]["task"]["properties"]
    assert set(properties["type"]["enum"]) == set(task_type_names())
    metrics = {m for name in task_type_names() for m in entry(name).metrics}
    assert metrics <= set(properties["primary_metric"]["enum"])
