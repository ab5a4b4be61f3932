"""docs/results.md from benchmark JSON alone: results are generated, never typed.

Each bench.json is written by `i2i-unlearn bench` (bench/) and holds its own tables: mean over seeds with each
score's 95 % interval, per-class scores, costs, and the command that made it. Beside them the page reads the
step-cost records (benchmarks/step_cost.py) and the robustness records (bench/robust.py) and nothing else: no cell
files, no models. Two rows whose paired difference's interval holds zero are shown as a tie (≈), never as a win. The targets' verdicts are data
(evaluation/bench_targets.py); this package renders them. Entry point: benchmarks/make_results_page.py.
"""
from i2i_unlearn.bench.page.plots import hole_size_plot, settings_plot, tradeoff_plot
from i2i_unlearn.bench.page.sections import (
    bench_section,
    build,
    families_summary,
    night_summary,
    render,
    robust_section,
    targets_table,
)
from i2i_unlearn.bench.page.tables import cells_table, collateral_tables, cost_table, main_table, versus_table
from i2i_unlearn.evaluation.bench_targets import judge_targets
