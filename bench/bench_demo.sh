#!/usr/bin/env bash
# Wall time and peak memory of the embedded demo, from an empty results/ tree.
# Usage: bash bench/bench_demo.sh   (after `make setup`; appends nothing, prints a table row)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# run in a scratch copy so an existing results/ tree is neither reused nor destroyed
git ls-files -z | xargs -0 -I{} cp --parents {} "$work"
cd "$work"
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o peak_kb.txt "$OLDPWD/.venv/bin/snakemake" results/comparison.json --quiet rules >/dev/null 2>snakemake.err
end=$(date +%s.%N)
jobs=$(grep -c "^localrule\|^rule" snakemake.err || true)
python3 - "$start" "$end" "$(cat peak_kb.txt)" <<'PY'
import json, sys
start, end, peak_kb = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
doc = json.load(open("results/comparison.json"))
task = doc["tasks"]["demo_sentiment"]
cells = [f"{name} {m['primary']['mean']:.3f}" for name, m in task["methods"].items()]
print(f"| demo (2 seeds, full + lora_r8) | {end - start:.0f} s | {peak_kb / 1024:.0f} MB (snakemake process tree max) | "
      f"probe {task['baseline']['linear_probe']['primary']:.3f}; " + "; ".join(cells) + " |")
PY
