"""`i2i-unlearn bench`: every family x method x seed x setting, one unlearning run and its evaluations.

A bench config (benchmarks/bench-<name>.yaml, spec.BenchSpec) names the evaluator, the datasets (each with
its forget classes), the families (each with its original model folder and its retrained reference
folders), the methods (each with its knobs file from the tuning step, and overrides), the unlearning
seeds, the tasks and the ablations. The plan is every cell:

    references:  (family, original | retrained folder, task)                     one evaluation each
    main:        (family, method, seed) unlearning run  x  every task             one evaluation per task
    ablations:   (family, method, setting, seed) unlearning run x the ablation's tasks

Caching. An unlearning run is keyed by the sha256 of its inputs (UNLEARN_KEY_DOC) and written to
<work>/models/<key>/; an evaluation is keyed by the unlearning key (or a reference's weights) and the
evaluation settings (EVAL_KEY_DOC) and written to <results>/cells/<key>.json. A finished cell is never
recomputed (one scored before cells kept their bootstrap replicates is scored again); a changed knob changes the keys of exactly the cells that use it; a killed bench starts
again where it stopped (an unlearning run from its last checkpoint, with the weights of an
uninterrupted run). <results>/bench.json assembles every finished cell into tables: mean over seeds
with a 95 % Student-t interval, the bootstrap interval over test images, per-class collateral damage
and the cost of each cell (wall time, peak RSS, steps/s). It is rewritten after every cell, so a
bench stopped half-way still says which cells ran and how long each took.
"""
from i2i_unlearn.bench.spec import MissingKnobs, load_bench, method_config
from i2i_unlearn.bench.plan import Cell, dry_run, make_plan, running_order
from i2i_unlearn.bench.run import command_line, evaluate_cell, rewrite_tables, run_bench, summary_lines
from i2i_unlearn.bench.cache import UNLEARNING_RECORD, eval_key, unlearn_key
from i2i_unlearn.bench.aggregate import BENCH_JSON, assemble, training_record, write_bench_json
from i2i_unlearn.bench.measure import Measure
