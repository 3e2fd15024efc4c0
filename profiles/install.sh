#!/usr/bin/env bash
# Install a tunetrace profile under its name, so `snakemake --profile NAME` finds it from any
# directory: links profiles/NAME into Snakemake's user profile folder
# (${XDG_CONFIG_HOME:-~/.config}/snakemake/NAME). Usage: bash profiles/install.sh slurm
set -euo pipefail
name="${1:-slurm}"
src="$(cd "$(dirname "$0")" && pwd)/$name"
[ -f "$src/config.yaml" ] || { echo "install.sh: no profile '$name' in $(dirname "$src")" >&2; exit 1; }
dest_dir="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake"
mkdir -p "$dest_dir"
if [ -e "$dest_dir/$name" ] && [ ! -L "$dest_dir/$name" ]; then
  echo "install.sh: $dest_dir/$name exists and is not a link; move it away first" >&2; exit 1
fi
ln -sfn "$src" "$dest_dir/$name"
echo "installed: $dest_dir/$name -> $src (check: tunetrace doctor --profile $name; run: snakemake --profile $name results/comparison.json)"
