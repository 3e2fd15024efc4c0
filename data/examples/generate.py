"""Write the small example-study data sets in this folder (written for tunetrace; deterministic).

    python data/examples/generate.py

- pairs_{train,eval}.tsv: sentence pairs (premise, hypothesis, entailment / not_entailment), GLUE layout.
- qa_{train,eval}.json: SQuAD v2 JSON with answerable and unanswerable questions.
- opinions_{train,eval}.jsonl: survey-style questions with the share of respondents per option.
- toxicity.csv: short statements about groups, labelled hostile / benign, with a target group.
- instructions.jsonl: instruction/response pairs (prompt, completion) with a difficulty and a domain.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivo", "Jun", "Kai", "Lena"]
PLACES = ["Oslo", "Lima", "Kyoto", "Accra", "Quito", "Riga", "Perth", "Tunis"]
ACTIVITIES = [("plays the violin", "makes music"), ("runs every morning", "exercises"),
              ("bakes bread", "cooks"), ("repairs bicycles", "fixes things"), ("paints portraits", "makes art")]


def pairs(rng: random.Random, n: int, prefix: str) -> list[list[str]]:
    rows = []
    for i in range(n):
        name, place = rng.choice(NAMES), rng.choice(PLACES)
        act, general = rng.choice(ACTIVITIES)
        premise = f"{name} lives in {place} and {act} on weekends."
        if i % 2 == 0:
            hypothesis = rng.choice([f"{name} {general}.", f"{name} lives in {place}."])
            label = "entailment"
        else:
            other = rng.choice([p for p in PLACES if p != place])
            hypothesis = rng.choice([f"{name} lives in {other}.", f"{name} has never been to {place}."])
            label = "not_entailment"
        rows.append([f"{prefix}{i}", premise, hypothesis, label])
    return rows


def squad(rng: random.Random, n: int, prefix: str) -> dict:
    paragraphs = []
    for i in range(n):
        name, place = NAMES[i % len(NAMES)], PLACES[(i * 3) % len(PLACES)]
        act, _ = ACTIVITIES[i % len(ACTIVITIES)]
        year = 1950 + (i * 7) % 60
        context = (f"{name} was born in {place} in {year}. Today {name} {act} with friends. "
                   f"The family moved away from {place} when {name} was twelve.")
        qas = [{"id": f"{prefix}{i}a", "question": f"Where was {name} born?", "is_impossible": False,
                "answers": [{"text": place, "answer_start": context.index(place)}]},
               {"id": f"{prefix}{i}b", "question": f"In which year was {name} born?", "is_impossible": False,
                "answers": [{"text": str(year), "answer_start": context.index(str(year))}]},
               {"id": f"{prefix}{i}c", "question": f"What was the name of {name}'s first teacher?", "is_impossible": True,
                "answers": []}]
        paragraphs.append({"context": context, "qas": qas})
    return {"version": "v2.0", "data": [{"title": "People", "paragraphs": paragraphs}]}


TOPICS = [("taxes on sugar", [0.5, 0.3, 0.2]), ("longer school days", [0.2, 0.3, 0.5]),
          ("more bicycle lanes", [0.6, 0.25, 0.15]), ("a four-day work week", [0.55, 0.2, 0.25]),
          ("banning cars downtown", [0.25, 0.2, 0.55]), ("free public transport", [0.65, 0.2, 0.15])]
AGES = {"18-29": 0.1, "30-49": 0.0, "50+": -0.1}


def opinions(rng: random.Random, n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        topic, base = TOPICS[i % len(TOPICS)]
        age = list(AGES)[(i // len(TOPICS)) % len(AGES)]
        shift = AGES[age] + rng.uniform(-0.05, 0.05)
        agree = min(max(base[0] + shift, 0.05), 0.9)
        disagree = min(max(base[2] - shift, 0.05), 0.9)
        target = [agree, max(1.0 - agree - disagree, 0.05), disagree]
        total = sum(target)
        rows.append({"id": f"{prefix}{i}", "question": f"Respondents aged {age}: do you support {topic}?",
                     "target": [round(t / total, 4) for t in target], "age_group": age})
    return rows


GROUPS = ["farmers", "teachers", "nurses", "students", "cyclists", "gamers"]
HOSTILE = ["{g} are worthless and should be kicked out", "I can't stand {g}, they ruin everything",
           "all {g} are liars and cheats", "{g} deserve nothing but contempt"]
BENIGN = ["{g} work hard and deserve respect", "I had a lovely chat with some {g} today",
          "many {g} volunteer in our town", "{g} often know a lot about their field"]
NEUTRAL = ["the weather was mild all week", "the train left ten minutes late"]


def toxicity(rng: random.Random) -> list[list[str]]:
    rows, k = [], 0
    for group in GROUPS:
        for template in HOSTILE + BENIGN:
            for variant in ("", " honestly", " in my view"):
                label = "hostile" if template in HOSTILE else "benign"
                rows.append([f"t{k:04d}", template.format(g=group) + variant + ".", label, group])
                k += 1
    for template in NEUTRAL:
        for variant in ("", " again", " today"):
            rows.append([f"t{k:04d}", template + variant + ".", "benign", ""])
            k += 1
    rng.shuffle(rows)
    return rows


def instructions(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        kind = i % 3
        if kind == 0:
            rows.append({"id": f"i{i}", "prompt": f"What is {a} plus {b}?", "completion": f"{a} plus {b} is {a + b}.",
                         "difficulty": "easy", "domain": "arithmetic"})
        elif kind == 1:
            rows.append({"id": f"i{i}", "prompt": f"What is {a} times {b}, minus {a}?",
                         "completion": f"{a} times {b} is {a * b}; minus {a} gives {a * b - a}.",
                         "difficulty": "hard", "domain": "arithmetic"})
        else:
            name, place = rng.choice(NAMES), rng.choice(PLACES)
            rows.append({"id": f"i{i}", "prompt": f"Write one sentence saying that {name} visited {place}.",
                         "completion": f"{name} spent a few happy days visiting {place}.",
                         "difficulty": "easy" if i % 2 else "hard", "domain": "writing"})
    return rows


def main() -> None:
    rng = random.Random(0)
    for split, n in (("train", 160), ("eval", 60)):
        with open(HERE / f"pairs_{split}.tsv", "w", encoding="utf-8", newline="") as handle:
            handle.write("index\tsentence1\tsentence2\tlabel\n")
            for row in pairs(rng, n, f"{split[0]}"):
                handle.write("\t".join(row) + "\n")
        (HERE / f"qa_{split}.json").write_text(json.dumps(squad(rng, n // 4, f"{split}{n}-"), indent=1) + "\n")
        with open(HERE / f"opinions_{split}.jsonl", "w", encoding="utf-8") as handle:
            for row in opinions(rng, n // 2, f"{split[0]}"):
                handle.write(json.dumps(row) + "\n")
    with open(HERE / "toxicity.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label", "target_group"])
        writer.writerows(toxicity(rng))
    with open(HERE / "instructions.jsonl", "w", encoding="utf-8") as handle:
        for row in instructions(rng, 150):
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
