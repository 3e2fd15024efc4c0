"""Length-sorted against id-order batches for the forward passes over a fixed set, side by side in one process:
a representation capture (`extract`, default settings: mean pooling, batch 64) and `predict_logits` (batch 16).

    python bench/bench_batching.py --rounds 3            # the demo's eval split and SST-2 dev (../shared/data)

The id-order variant is what the code did before (each batch padded to its longest example, in id order); the
rows are checked equal between the two. Best of --rounds, interleaved, 2 threads.
"""

from __future__ import annotations

import argparse
import functools
import time

import pandas as pd
import torch
from benchkit import REPO, loadavg, md_table

from tunetrace import artifacts as A
from tunetrace.analysis import representations as R
from tunetrace.analysis.steps import RepresentationSpec
from tunetrace.config import ModelSpec, TaskSpec
from tunetrace.models.loading import load_classifier, load_tokenizer
from tunetrace.tasks.encoding import encode_classification, make_collator, predict_logits

SST2_DEV = REPO.parent / "shared" / "data" / "glue-sst2" / "dev.tsv"


def sets() -> dict[str, pd.DataFrame]:
    demo = pd.read_csv(REPO / "data" / "demo" / "sentiment_eval.csv")
    found = {"demo eval (200)": pd.DataFrame({A.COL_TEXT: demo["text"], A.COL_LABEL: 0})}
    if SST2_DEV.is_file():
        sst2 = pd.read_csv(SST2_DEV, sep="\t")
        found[f"SST-2 dev ({len(sst2)})"] = pd.DataFrame({A.COL_TEXT: sst2["sentence"], A.COL_LABEL: 0})
    for frame in found.values():
        frame[A.COL_ID] = [f"{i:06d}" for i in range(len(frame))]
    return found


def id_order_probe(probe: R.ProbeSet, frame: pd.DataFrame, tokenizer, task: TaskSpec, spec) -> R.ProbeSet:
    texts = R.select_probe(frame, spec.probe_size)[A.COL_TEXT].tolist()
    batches = [
        dict(
            tokenizer(
                texts[i : i + spec.batch_size],
                truncation=True,
                max_length=task.max_length,
                padding=True,
                return_tensors="pt",
            )
        )
        for i in range(0, len(texts), spec.batch_size)
    ]
    return R.ProbeSet(ids=probe.ids, hash=probe.hash, batches=batches, order=None)


@torch.no_grad()
def id_order_predict(model, dataset, tokenizer, batch_size: int) -> torch.Tensor:
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=make_collator(tokenizer))
    return torch.cat([model(**{k: v for k, v in b.items() if k != "labels"}).logits.float() for b in loader])


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model_spec = ModelSpec.from_dict({"name_or_path": "embedded:all-MiniLM-L6-v2"})
    tokenizer, model = load_tokenizer(model_spec), load_classifier(model_spec, ["negative", "positive"])
    task = TaskSpec.from_dict(
        "t", {"source": {"train": "-", "eval": "-"}, "labels": ["negative", "positive"], "max_length": 64}
    )
    spec = RepresentationSpec.from_dict({})
    rows, before = [], loadavg()
    for name, frame in sets().items():
        sorted_probe = R.build_probe(frame, tokenizer, task, spec)
        plain_probe = id_order_probe(sorted_probe, frame, tokenizer, task, spec)
        tokens = [sum(int(b["attention_mask"].numel()) for b in p.batches) for p in (plain_probe, sorted_probe)]
        dataset, _ = encode_classification(frame.assign(**{A.COL_LABEL: 0}), tokenizer, task.max_length)
        variants = {
            "capture, id order": functools.partial(R.extract, model, plain_probe, spec),
            "capture, by length": functools.partial(R.extract, model, sorted_probe, spec),
            "predict, id order": functools.partial(id_order_predict, model, dataset, tokenizer, 16),
            "predict, by length": functools.partial(predict_logits, model, dataset, tokenizer, 16),
        }
        timings: dict[str, tuple[float, object]] = {}
        for _ in range(args.rounds):  # interleaved; best of the rounds
            for label, fn in variants.items():
                seconds, out = timed(fn)
                if seconds < timings.get(label, (float("inf"), None))[0]:
                    timings[label] = (seconds, out[0] if label.startswith("capture") else out)
        for i in timings["capture, id order"][1]:
            torch.testing.assert_close(
                timings["capture, id order"][1][i].float(),
                timings["capture, by length"][1][i].float(),
                atol=2e-3,
                rtol=1e-3,
            )
        torch.testing.assert_close(
            timings["predict, id order"][1], timings["predict, by length"][1], atol=1e-4, rtol=1e-4
        )
        for what in ("capture", "predict"):
            a, b = timings[f"{what}, id order"][0], timings[f"{what}, by length"][0]
            padded = f"{tokens[0]} -> {tokens[1]} ({tokens[1] / tokens[0]:.2f}x)" if what == "capture" else ""
            rows.append([name, what, f"{a:.2f}", f"{b:.2f}", f"{b / a:.2f}", padded])
    print(
        md_table(["set", "forward pass", "id order (s)", "by length (s)", "ratio", "probe tokens incl. padding"], rows)
    )
    print(f"\nBest of {args.rounds} interleaved rounds, 2 threads; load average before {before}, after {loadavg()}.")


if __name__ == "__main__":
    main()
