#!/usr/bin/env bash
# Run named experiments one after another (e.g. in the background on a spare core):
#   nohup setsid tools/run_experiments.sh --threads 1 maml-sinusoid maml-omniglot-5w1s &
# Each run resumes from its checkpoint if interrupted; a name whose result file exists is
# skipped. Logs go to runs/<name>.log.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [[ -z ${COMPANION_DATA_MIRROR:-} && -d ../shared/data/omniglot ]]; then
  COMPANION_DATA_MIRROR=$(cd ../shared/data && pwd)  # as the Makefile does
fi
export COMPANION_DATA_MIRROR
opts=()
while [[ $# -gt 0 && $1 == --* ]]; do opts+=("$1" "$2"); shift 2; done
mkdir -p runs
for name in "$@"; do
  while pgrep -f "companion.experiments run $name " > /dev/null; do sleep 30; done  # not twice
  if [[ -f results/$name-seed0.json ]]; then echo "skip $name (result exists)"; continue; fi
  echo "$(date -Is) start $name"
  "$PY" -m companion.experiments run "$name" --quiet "${opts[@]}" > "runs/$name.log" 2>&1
  rc=$?
  echo "$(date -Is) end $name rc=$rc"
done
