"""The script a user would write instead of tunetrace: fine-tune, checkpoint, evaluate (bench_overhead.py runs it).

Same model, data, hyperparameters and checkpoint interval as the demo's method (config/config.yaml, with the
schema defaults it leaves out: weight decay 0.01, linear schedule, clipping 1.0, logging every 5 steps); LoRA
(alpha 2r, dropout 0.05, query/value) through PEFT when --lora-r is given. Prints one JSON line: accuracy,
train_runtime and train_samples_per_second.
"""

import argparse
import json

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--train", required=True)
p.add_argument("--eval", required=True)
p.add_argument("--out", required=True)
p.add_argument("--lr", type=float, default=5e-5)
p.add_argument("--lora-r", type=int, default=0)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--epochs", type=float, default=3)
a = p.parse_args()
torch.set_num_threads(a.threads)

labels = ["negative", "positive"]
tok = AutoTokenizer.from_pretrained(a.model)


class Rows(torch.utils.data.Dataset):
    def __init__(self, path):
        frame = pd.read_csv(path)
        self.enc = tok(list(frame["text"]), truncation=True, max_length=64)
        self.y = [labels.index(v) for v in frame["label"]]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {**{k: v[i] for k, v in self.enc.items()}, "labels": self.y[i]}


model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=len(labels))
if a.lora_r:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        model,
        LoraConfig(
            task_type="SEQ_CLS",
            r=a.lora_r,
            lora_alpha=2 * a.lora_r,
            lora_dropout=0.05,
            target_modules=["query", "value"],
        ),
    )
args = TrainingArguments(
    output_dir=a.out,
    seed=a.seed,
    data_seed=a.seed,
    learning_rate=a.lr,
    weight_decay=0.01,
    per_device_train_batch_size=16,
    per_device_eval_batch_size=32,
    num_train_epochs=a.epochs,
    warmup_steps=0.1,
    save_steps=30,
    save_total_limit=2,
    logging_steps=5,
    report_to=[],
    use_cpu=True,
    disable_tqdm=True,
)
trainer = Trainer(model=model, args=args, train_dataset=Rows(a.train), processing_class=tok)
result = trainer.train()
trainer.save_model(f"{a.out}/final")
pred = trainer.predict(Rows(a.eval))
accuracy = float((np.argmax(pred.predictions, axis=-1) == pred.label_ids).mean())
print(json.dumps({"accuracy": accuracy, **result.metrics}))
