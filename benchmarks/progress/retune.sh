#!/bin/bash
# One family's re-tune on the validation split, its one test score, then its robustness audits (issues 32, 33):
#   benchmarks/progress/retune.sh mae|vqgan|diffusion
# Each step skips what is done, so the queue can kill and restart it. The methods that start from another's model
# (`starts_from:`, e.g. undo) wait for the second pass: the first keeps its record and knobs in benchmarks/progress
# (committed as it grows; the shipped configs are untouched until its every grid is scored), the second, with the
# shipped paths, finds those trials scored, writes their methods' configs/ at once and then tunes the rest (undo's
# config is written when its own grid is done). An audit runs only after its tune finished (`set -e`), so it never
# reads the knobs of an earlier tuning; a failed step stops the queue (queue.sh) for the same reason.
set -euo pipefail
cd "$(dirname "$0")/../.."
family=$1
config=benchmarks/tune-$family.yaml
[ -f "$config" ] || { echo "no $config" >&2; exit 2; }
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
python=.venv/bin/python
first=$($python -c "import sys, yaml; spec = yaml.safe_load(open(sys.argv[1]))
print(','.join(m for m in spec['methods'] if m not in (spec.get('starts_from') or {})))" "$config")
log=runs/tune-$family.log
$python benchmarks/tune.py --config "$config" --methods "$first" --results benchmarks/progress \
  --write-to benchmarks/progress/chosen --work "runs/tune-$family" >> "$log" 2>&1
# the first pass's record becomes the shipped one, unless the second pass has it already (a restarted script)
$python - "$family" <<'EOF'
import json, os, shutil, sys
from pathlib import Path
progress, results = (Path(f"benchmarks/{folder}/tune-{sys.argv[1]}.json") for folder in ("progress", "results"))
def scored(path):
    return {t["key"] for t in json.loads(path.read_text())["trials"] if "scores" in t} if path.is_file() else set()
if not scored(progress) <= scored(results):   # copied whole or not at all: a killed copy leaves the old record
    shutil.copy(progress, results.with_suffix(".json.tmp"))
    os.replace(results.with_suffix(".json.tmp"), results)
EOF
$python benchmarks/tune.py --config "$config" --work "runs/tune-$family" >> "$log" 2>&1
$python benchmarks/tune.py --config "$config" --work "runs/tune-$family" --score-test >> "$log" 2>&1
# a file request first: its retrainings are kept in pretrained/ as each finishes, so a session that ends inside it
# loses the least (a class request's unlearned models live in runs/, gone on a fresh machine)
for robust in benchmarks/robust-"$family"-*.yaml benchmarks/robust-"$family".yaml; do
  [ -f "$robust" ] || continue
  $python benchmarks/robust.py --config "$robust" >> "runs/$(basename "$robust" .yaml).log" 2>&1
done
