#!/usr/bin/env bash
# Run experiments from a clean clone (/work/runner by default) so that every result records
# an exact commit; copy finished results back into this checkout's results/ (and remove a
# parked checkpoint of the run there, which the result replaces).
#   tools/queue_clean.sh NAME ...        (waits for a running process of the same name)
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
runner=${RUNNER:-/work/runner}
cd "$runner" || exit 1
export PY="$here/.venv/bin/python" PYTHONPATH="$runner"
for name in "$@"; do
  tools/run_experiments.sh --threads 1 "$name"
  if [[ -f results/$name-seed0.json ]]; then
    cp "results/$name-seed0.json" "results/$name-seed0.pt" "$here/results/"
    rm -rf "$here/parked/$name-seed0"  # a parked checkpoint of it is spent (see `park`)
    echo "$(date -Is) copied $name"
  fi
done
