"""Data loading: formats, GLUE quirks, and errors naming file, row and column."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_config, write_sentiment_csv
from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, TaskSpec, validate_config
from tunetrace.data.checks import DataError
from tunetrace.data.readers import read_table
from tunetrace.data.splits import stratified_sample, stratified_split
from tunetrace.stages.evaluate import predictions_csv, score_run
from tunetrace.stages.prepare import prepare_task_data
from tunetrace.tasks.base import ModelOutputs
from tunetrace.tasks.outputs import write_outputs


def _task(**overrides: object) -> TaskSpec:
    config = tiny_config()
    config["tasks"]["tiny"].update(overrides)
    return TaskSpec.from_dict("tiny", validate_config(config)["tasks"]["tiny"])


def test_prepare_writes_standard_splits_and_manifest(tmp_path: Path) -> None:
    """Prepared Parquet has standard columns; the manifest counts rows and hashes sources."""
    write_sentiment_csv(tmp_path / "data" / "train.csv", 40)
    write_sentiment_csv(tmp_path / "data" / "eval.csv", 16)
    manifest = prepare_task_data(_task(), tmp_path / "out", workdir=tmp_path)
    train = pd.read_parquet(tmp_path / "out" / A.TRAIN_SPLIT)
    assert list(train.columns) == [A.COL_ID, A.COL_TEXT, A.COL_LABEL, A.COL_LABEL_NAME, A.COL_GROUP]
    assert manifest["splits"]["train"]["rows"] == 40 and manifest["splits"]["eval"]["rows"] == 16
    assert manifest["splits"]["eval"]["label_distribution"] == {"negative": 8, "positive": 8}
    assert len(manifest["sources"][0]["sha256"]) == 64


def test_glue_tsv_with_bom_and_stray_quotes(tmp_path: Path) -> None:
    """A GLUE-style TSV (BOM, unbalanced quotes, no quoting) reads verbatim."""
    path = tmp_path / "train.tsv"
    path.write_bytes('\ufeffsentence\tlabel\nit \'s a " charming film\t1\nbad " acting \t0\n'.encode())
    frame = read_table(path)
    assert list(frame.columns) == ["sentence", "label"]
    assert frame.loc[0, "sentence"] == "it 's a \" charming film"


def test_missing_column_names_file_and_columns(tmp_path: Path) -> None:
    """A missing label column names the file and lists the columns it has."""
    path = tmp_path / "d.csv"
    path.write_text("id,text,domain\n1,hello,films\n")
    task = _task(source={"train": str(path)})
    with pytest.raises(DataError) as info:
        prepare_task_data(task, tmp_path / "out")
    assert str(path) in str(info.value) and "'label'" in str(info.value) and "domain" in str(info.value)


def test_empty_file_is_reported(tmp_path: Path) -> None:
    """An empty data file is an error naming the file."""
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(path)


def test_label_outside_label_set_names_row_and_column(tmp_path: Path) -> None:
    """An unknown label names the 1-based file line, the column and the label set."""
    path = tmp_path / "d.csv"
    path.write_text("id,text,label,domain\n1,good,positive,films\n2,meh,neutral,films\n")
    task = _task(source={"train": str(path), "eval": str(path)})
    with pytest.raises(DataError) as info:
        prepare_task_data(task, tmp_path / "out")
    message = str(info.value)
    assert "row 3" in message and "'label'" in message and "'neutral'" in message and "positive" in message


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported with their line number."""
    path = tmp_path / "d.csv"
    path.write_bytes(b"id,text,label,domain\n1,good,positive,films\n2,caf\xe9 bad,negative,films\n")
    with pytest.raises(DataError, match="line 3"):
        read_table(path)


def test_empty_text_is_reported(tmp_path: Path) -> None:
    """A blank text cell names its row and column."""
    path = tmp_path / "d.csv"
    path.write_text('id,text,label,domain\n1,good,positive,films\n2,"  ",negative,films\n')
    task = _task(source={"train": str(path), "eval": str(path)})
    with pytest.raises(DataError, match=r"row 3, column 'text': empty text"):
        prepare_task_data(task, tmp_path / "out")


def test_jsonl_and_parquet_sources(tmp_path: Path) -> None:
    """JSONL and Parquet files read into the same columns."""
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["positive", "negative"]})
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "d.parquet")
    assert read_table(tmp_path / "d.jsonl").equals(read_table(tmp_path / "d.parquet"))


def test_held_out_split_is_stratified_and_deterministic(tmp_path: Path) -> None:
    """Without an eval file, a seeded stratified share of train is held out."""
    write_sentiment_csv(tmp_path / "train.csv", 40)
    task = _task(source={"train": str(tmp_path / "train.csv"), "eval_fraction": 0.25})
    first = prepare_task_data(task, tmp_path / "a")
    second = prepare_task_data(task, tmp_path / "b")
    assert first["splits"]["eval"]["label_distribution"] == {"negative": 5, "positive": 5}
    assert first["splits"]["eval"]["sha256"] == second["splits"]["eval"]["sha256"]


def test_stratified_split_keeps_each_stratum() -> None:
    """Each (label, group) stratum contributes its share to the held-out part."""
    frame = pd.DataFrame({"label": [0, 1] * 20, "group": ["a"] * 20 + ["b"] * 20})
    rest, held = stratified_split(frame, 0.5, seed=3, by=["label", "group"])
    assert len(held) == 20 and len(rest) == 20
    assert held.groupby(["label", "group"]).size().tolist() == [5, 5, 5, 5]


def test_max_eval_examples_is_a_stratified_seeded_sample(tmp_path: Path) -> None:
    """max_eval_examples keeps the label and group shares of the eval file, per seed, in file order."""
    rows = (
        [("positive", "films")] * 60
        + [("negative", "films")] * 20
        + [("positive", "books")] * 15
        + [("negative", "books")] * 5
    )  # 60/20/15/5 of 100, in blocks so a first-N cut is lopsided
    frame = pd.DataFrame(
        {
            "id": [f"e{i:03d}" for i in range(100)],
            "text": [f"t{i}" for i in range(100)],
            "label": [r[0] for r in rows],
            "domain": [r[1] for r in rows],
        }
    )
    frame.to_csv(tmp_path / "eval.csv", index=False)
    write_sentiment_csv(tmp_path / "train.csv", 40)
    source = {"train": str(tmp_path / "train.csv"), "eval": str(tmp_path / "eval.csv")}
    first = prepare_task_data(_task(source=source, max_eval_examples=20), tmp_path / "a")
    again = prepare_task_data(_task(source=source, max_eval_examples=20), tmp_path / "b")
    other = prepare_task_data(_task(source={**source, "split_seed": 7}, max_eval_examples=20), tmp_path / "c")
    evaluation = pd.read_parquet(tmp_path / "a" / A.EVAL_SPLIT)
    shares = evaluation.groupby([A.COL_LABEL_NAME, A.COL_GROUP]).size().to_dict()
    assert shares == {
        ("positive", "films"): 12,
        ("negative", "films"): 4,
        ("positive", "books"): 3,
        ("negative", "books"): 1,
    }
    assert evaluation[A.COL_ID].tolist() == sorted(evaluation[A.COL_ID])  # file order kept
    assert first["splits"]["eval"]["sha256"] == again["splits"]["eval"]["sha256"]
    assert first["splits"]["eval"]["sha256"] != other["splits"]["eval"]["sha256"]
    assert first["eval_sample"] == {
        "max_eval_examples": 20,
        "from_rows": 100,
        "seed": 0,
        "stratified_by": [A.COL_LABEL, A.COL_GROUP],
    }


def test_stratified_sample_keeps_a_row_of_each_tiny_stratum() -> None:
    """A stratum far below its proportional share still keeps one row; the total is exact."""
    frame = pd.DataFrame({"label": [0] * 95 + [1] * 3 + [2] * 2})
    sample = stratified_sample(frame, 10, seed=1, by=["label"])
    assert len(sample) == 10
    assert sample["label"].value_counts().sort_index().tolist() == [8, 1, 1]
    scarce = stratified_sample(frame, 2, seed=1, by=["label"])
    assert sorted(scarce["label"]) == [0, 1]  # fewer rows than strata: the largest strata first


def test_json_array_file_reads_as_rows(tmp_path: Path) -> None:
    """A .json file holding an array of objects reads into one row per object, like the same JSONL."""
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["positive", "negative", "positive"]})
    frame.to_json(tmp_path / "d.json", orient="records")
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    assert (tmp_path / "d.json").read_text().startswith("[")
    assert read_table(tmp_path / "d.json").equals(read_table(tmp_path / "d.jsonl"))
    (tmp_path / "lines.json").write_text('{"text": "a", "label": "positive"}\n{"text": "b", "label": "negative"}\n')
    assert read_table(tmp_path / "lines.json")["text"].tolist() == ["a", "b"]  # JSON Lines under .json, as before
    (tmp_path / "object.json").write_text('{\n  "rows": [{"text": "a"}]\n}\n')
    with pytest.raises(DataError, match=r"object.json: a JSON dict, not an array of examples"):
        read_table(tmp_path / "object.json")
    (tmp_path / "bad.json").write_text('[{"text": "a"}, "b"]')
    with pytest.raises(DataError, match=r"bad.json: item 1 of the JSON array is a str"):
        read_table(tmp_path / "bad.json")


def test_squad_json_is_still_detected(tmp_path: Path) -> None:
    """A .json SQuAD document under format auto reads as SQuAD rows, not as one row of 'data'."""
    document = {
        "version": "v2.0",
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Paris is in France.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Where is Paris?",
                                "answers": [{"text": "France", "answer_start": 12}],
                            },
                            {"id": "q2", "question": "Who?", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "squad.json").write_text(json.dumps(document))
    auto, declared = read_table(tmp_path / "squad.json"), read_table(tmp_path / "squad.json", "squad")
    assert auto.equals(declared) and auto["id"].tolist() == ["q1", "q2"]


def _hub_cache(cache: Path, hub_id: str, splits: dict[str, pd.DataFrame]) -> None:
    """Lay `splits` out in `cache` as `datasets.load_dataset(hub_id)` leaves a hub dataset after an online load
    (<org>___<name>/default/<version>/<hash>/, Arrow files + dataset_info.json), built by datasets itself."""
    import datasets
    from datasets.data_files import DataFilesDict
    from datasets.packaged_modules.parquet.parquet import Parquet

    files = {}
    for split, frame in splits.items():
        files[split] = [str(cache.parent / f"{split}.parquet")]
        datasets.Dataset.from_pandas(frame, preserve_index=False).to_parquet(files[split][0])
    org, name = hub_id.split("/")
    builder = Parquet(
        cache_dir=str(cache.parent / "build"),
        dataset_name=name,
        config_name="default",
        data_files=DataFilesDict.from_patterns(files),
        hash="0123abcd",
    )
    builder.download_and_prepare()
    shutil.copytree(builder.cache_dir, cache / f"{org}___{name}" / "default" / "0.0.0" / "0123abcd")


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty datasets cache, with the hub switched off (as HF_DATASETS_OFFLINE=1 does at import)."""
    datasets = pytest.importorskip("datasets")
    cache = tmp_path / "hf" / "datasets"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return cache


def test_hub_format_reads_the_local_datasets_cache_offline(tmp_path: Path, offline_hub: Path) -> None:
    """source.format hub loads `org/name` through load_dataset from the local cache with the hub off."""
    frames = {}
    for split, rows in (("train", 24), ("validation", 8)):
        write_sentiment_csv(tmp_path / f"{split}.csv", rows)
        frames[split] = pd.read_csv(tmp_path / f"{split}.csv")
    _hub_cache(offline_hub, "acme/tiny_reviews", frames)
    task = _task(source={"format": "hub", "hub_id": "acme/tiny_reviews", "train": "train", "eval": "validation"})
    manifest = prepare_task_data(task, tmp_path / "out")
    evaluation = pd.read_parquet(tmp_path / "out" / A.EVAL_SPLIT)
    assert manifest["splits"]["train"]["rows"] == 24 and len(evaluation) == 8
    assert evaluation[A.COL_ID].tolist() == frames["validation"]["id"].tolist()
    assert [(h["id"], h["split"], h["rows"]) for h in manifest["hub"]] == [
        ("acme/tiny_reviews", "train", 24),
        ("acme/tiny_reviews", "validation", 8),
    ]
    assert all(h["fingerprint"] for h in manifest["hub"])
    with pytest.raises(DataError, match=r"tasks\.tiny\.source: hub dataset 'acme/tiny_reviews' has no split 'test'"):
        prepare_task_data(_task(source={**task.source, "eval": "test"}), tmp_path / "bad")


def test_hub_format_without_a_cache_names_the_key_and_the_fix(tmp_path: Path, offline_hub: Path) -> None:
    """Offline with the dataset not cached: the error names the task key, the cache and how to fill it."""
    task = _task(source={"format": "hub", "hub_id": "acme/not_cached"})
    with pytest.raises(DataError) as info:
        prepare_task_data(task, tmp_path / "out")
    message = str(info.value)
    assert "tasks.tiny.source.hub_id 'acme/not_cached'" in message and str(offline_hub) in message
    assert "datasets.load_dataset('acme/not_cached')" in message and "HF_DATASETS_OFFLINE" in message
    assert not (tmp_path / "out").exists()


def test_evaluate_writes_a_predictions_csv_beside_the_parquet(tmp_path: Path) -> None:
    """score_run writes predictions.csv: id, text, label and prediction by name, group, correct, probabilities."""
    write_sentiment_csv(tmp_path / "data" / "train.csv", 24)
    write_sentiment_csv(tmp_path / "data" / "eval.csv", 6)
    task = _task()
    prepare_task_data(task, tmp_path / "prepared", workdir=tmp_path)
    frame = pd.read_parquet(tmp_path / "prepared" / A.EVAL_SPLIT)
    logits = np.zeros((len(frame), 2))
    logits[np.arange(len(frame)), [1, 1, 0, 0, 1, 0]] = 3.0  # class 1 = positive for the first two, ...
    write_outputs(
        ModelOutputs(pd.DataFrame({A.COL_ID: frame[A.COL_ID], "logits": list(logits)}), {"truncated": 0}),
        tmp_path / "outputs.parquet",
    )
    config = validate_config(tiny_config())
    score_run(
        task,
        MethodSpec.from_dict("full", config["methods"]["full"]),
        EvalSpec.from_dict(config["evaluation"]),
        0,
        tmp_path / "prepared",
        tmp_path / "outputs.parquet",
        tmp_path / "eval",
    )
    table = pd.read_csv(tmp_path / "eval" / A.PREDICTIONS_CSV, keep_default_na=False)
    assert list(table.columns) == [
        "id",
        "text",
        "label",
        "prediction",
        "group",
        "correct",
        "prob_negative",
        "prob_positive",
    ]
    assert table["id"].tolist() == frame[A.COL_ID].tolist() and table["text"].tolist() == frame[A.COL_TEXT].tolist()
    assert table["label"].tolist() == frame[A.COL_LABEL_NAME].tolist()
    assert table["prediction"].tolist() == ["positive", "positive", "negative", "negative", "positive", "negative"]
    assert table["correct"].tolist() == (table["label"] == table["prediction"]).tolist()
    assert table["group"].tolist() == frame[A.COL_GROUP].tolist()
    parquet = pd.read_parquet(tmp_path / "eval" / A.PREDICTIONS)
    assert np.allclose(table["prob_positive"], parquet["prob_positive"])


@pytest.mark.parametrize(
    "inputs, rows, leading",
    [
        (
            {"prompt": ["Q: 1+1?"], "completion": ["2"]},
            {"nll_sum": [1.5], "completion_tokens": [1], "loss": [1.5]},
            ["id", "prompt", "completion", "group"],
        ),
        (
            {"question": ["Where?"], "context": ["In Paris."]},
            {"prediction": ["Paris"], "answers": ['["Paris"]']},
            ["id", "question", "context", "prediction", "group"],
        ),
        ({"text": ["Which one?"]}, {"pred_a": [0.7], "target_a": [1.0], "wasserstein": [0.3]}, ["id", "text", "group"]),
    ],
)
def test_predictions_csv_carries_each_task_types_inputs(inputs: dict, rows: dict, leading: list[str]) -> None:
    """Types without classes (causal LM, extractive QA, distribution) get their inputs and own columns."""
    frame = pd.DataFrame({A.COL_ID: ["x1"], **inputs, A.COL_GROUP: ["g"]})
    table = predictions_csv(pd.DataFrame({A.COL_ID: ["x1"], **rows, A.COL_GROUP: ["g"]}), frame)
    assert list(table.columns) == leading + [c for c in rows if c not in leading]
    assert table.loc[0, leading[1]] == next(iter(inputs.values()))[0]
