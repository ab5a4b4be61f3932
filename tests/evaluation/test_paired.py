"""Paired comparisons of two rows scored on the same test images (metrics.paired_difference, issue 32)."""
import pytest
import torch

from i2i_unlearn.evaluation.metrics import Z_95, bootstrap_indices, compare, paired_difference, paired_verdict

IMAGES, RESAMPLES = 200, 400


def _row(difficulty, shift, seeds, generator, seed_spread=0.02, noise=0.2):
    """Per-seed scores (the mean over images) and their bootstrap replicates on shared resamples: each image's
    own difficulty is common to every row, so it is the noise pairing removes."""
    per_image = [difficulty + shift + seed_spread * torch.randn(1, generator=generator, dtype=torch.float64)
                 + noise * torch.randn(IMAGES, generator=generator, dtype=torch.float64) for _ in range(seeds)]
    indices = bootstrap_indices(IMAGES, RESAMPLES, 0)            # the same for every row
    values = [float(v.mean()) for v in per_image]
    replicates = torch.stack([v[indices].mean(dim=1) for v in per_image])
    return values, replicates


def test_a_consistent_small_difference_is_a_win_paired_and_a_tie_unpaired():
    generator = torch.Generator().manual_seed(0)
    difficulty = 3.0 * torch.randn(IMAGES, generator=generator, dtype=torch.float64)
    a, a_reps = _row(difficulty, 0.3, 3, generator)
    b, b_reps = _row(difficulty, 0.0, 3, generator)
    # the unpaired rule: each row's own interval (images and seeds), combined as if independent
    hw = lambda values, reps: Z_95 * float(reps.mean(dim=0).std())   # noqa: E731  (the image part dominates)
    unpaired = compare(sum(a) / 3, hw(a, a_reps), sum(b) / 3, hw(b, b_reps), "higher")
    paired = paired_difference(a, b, a_reps, b_reps)
    assert unpaired == "tie"
    assert paired_verdict(paired, "higher") == "better" and paired["hw"] < 0.3 < hw(a, a_reps)
    assert paired["image_hw"] < 0.1 and paired["seeds"] == [3, 3]


def test_the_paired_interval_covers_a_true_zero_difference_about_95_percent_of_the_time():
    generator = torch.Generator().manual_seed(1)
    covered, trials = 0, 300
    for _ in range(trials):
        difficulty = 3.0 * torch.randn(IMAGES, generator=generator, dtype=torch.float64)
        a, a_reps = _row(difficulty, 0.0, 3, generator, seed_spread=0.05)
        b, b_reps = _row(difficulty, 0.0, 3, generator, seed_spread=0.05)
        covered += paired_verdict(paired_difference(a, b, a_reps, b_reps), "higher") == "tie"
    assert 0.90 <= covered / trials <= 0.995, covered / trials


def test_paired_seeds_use_the_per_seed_differences_and_one_seed_adds_no_seed_part():
    generator = torch.Generator().manual_seed(2)
    difficulty = torch.randn(IMAGES, generator=generator, dtype=torch.float64)
    a, a_reps = _row(difficulty, 0.1, 3, generator)
    b, b_reps = _row(difficulty, 0.0, 3, generator)
    paired_seeds = paired_difference(a, b, a_reps, b_reps, seeds_paired=True)
    assert paired_seeds["seeds_paired"] and paired_seeds["seed_hw"] is not None
    one = paired_difference(a[:1], b[:1], a_reps[:1], b_reps[:1])
    assert one["seed_hw"] is None and one["hw"] == one["image_hw"]


def test_against_one_fixed_model_the_other_rows_seed_spread_still_counts():
    """Three unlearning seeds against the one original: the seed part is the one-sample t interval of the three
    seeds' mean (t with 2 degrees of freedom x s / sqrt 3), not dropped because the original has no spread."""
    from i2i_unlearn.evaluation.metrics import t_quantile
    generator = torch.Generator().manual_seed(4)
    difficulty = torch.randn(IMAGES, generator=generator, dtype=torch.float64)
    a, a_reps = _row(difficulty, 0.1, 3, generator)
    b, b_reps = _row(difficulty, 0.0, 1, generator)
    expected = t_quantile(0.95, 2) * float(torch.tensor(a, dtype=torch.float64).std()) / 3 ** 0.5
    for difference in (paired_difference(a, b, a_reps, b_reps), paired_difference(b, a, b_reps, a_reps)):
        assert difference["seed_hw"] == pytest.approx(expected)
        assert difference["hw"] == pytest.approx((difference["image_hw"] ** 2 + expected ** 2) ** 0.5)


def test_bench_rows_with_replicates_are_compared_paired_and_without_them_unpaired():
    from i2i_unlearn.evaluation.metrics import compare_rows
    generator = torch.Generator().manual_seed(3)
    difficulty = 3.0 * torch.randn(IMAGES, generator=generator, dtype=torch.float64)
    a, a_reps = _row(difficulty, 0.3, 3, generator)
    b, b_reps = _row(difficulty, 0.0, 3, generator)

    def stat(values, reps, keep):
        row = {"mean": sum(values) / len(values), "hw": Z_95 * float(reps.mean(dim=0).std()), "values": values}
        return {**row, "replicates": reps.mean(dim=0).tolist()} if keep else row
    assert compare_rows(stat(a, a_reps, True), stat(b, b_reps, True), "higher") == "better"
    assert compare_rows(stat(a, a_reps, False), stat(b, b_reps, True), "higher") == "tie"   # one row kept none
    assert compare_rows(stat(b, b_reps, True), stat(a, a_reps, True), "lower") == "better"
    assert compare_rows(None, stat(a, a_reps, True), "lower") is None


def test_a_single_unlearning_run_counts_its_methods_seed_spread():
    """A sweep point is one run of a method: one draw of its seed noise. With its method's seed spread borrowed
    (`seed_spread`) the seed part counts that draw's variance, and a lucky seed no longer beats a three-seed row."""
    from i2i_unlearn.evaluation.metrics import compare_rows, t_quantile
    generator = torch.Generator().manual_seed(5)
    difficulty = 3.0 * torch.randn(IMAGES, generator=generator, dtype=torch.float64)
    ours, ours_reps = _row(difficulty, 0.0, 3, generator, seed_spread=0.01)
    point, point_reps = _row(difficulty, 0.15, 1, generator, seed_spread=0.0)
    alone = paired_difference(point, ours, point_reps, ours_reps)
    borrowed = paired_difference(point, ours, point_reps, ours_reps, borrowed=({"sd": 0.2, "dof": 2}, None))
    var_ours = float(torch.tensor(ours, dtype=torch.float64).var()) / 3
    total = 0.2 ** 2 + var_ours
    dof = total ** 2 / (0.2 ** 4 / 2 + var_ours ** 2 / 2)
    assert borrowed["seed_hw"] == pytest.approx(t_quantile(0.95, dof) * total ** 0.5)
    assert alone["seed_hw"] < borrowed["seed_hw"]
    assert paired_verdict(alone, "higher") == "better" and paired_verdict(borrowed, "higher") == "tie"

    def stat(values, reps, spread=None):
        row = {"mean": sum(values) / len(values), "hw": Z_95 * float(reps.mean(dim=0).std()), "values": values,
               "replicates": reps.mean(dim=0).tolist()}
        return {**row, "seed_spread": spread} if spread else row
    assert compare_rows(stat(point, point_reps), stat(ours, ours_reps), "higher") == "better"
    assert compare_rows(stat(point, point_reps, {"sd": 0.2, "dof": 2}), stat(ours, ours_reps), "higher") == "tie"
    # the unpaired rule counts it too: t(2) x sd added to the point's half-width
    unpaired = {k: v for k, v in stat(point, point_reps, {"sd": 0.2, "dof": 2}).items() if k != "replicates"}
    assert compare_rows(unpaired, {k: v for k, v in stat(ours, ours_reps).items() if k != "replicates"},
                        "higher") == "tie"


def test_a_sweep_point_borrows_its_methods_main_row_seed_spread_and_nothing_else_does():
    from i2i_unlearn.bench.aggregate import borrow_seed_spreads

    def row(name, group, label, values, vary=None):
        stat = {"mean": sum(values) / len(values), "hw": 0.1, "values": values}
        return {"name": name, "group": group, "label": label, "seeds": list(range(len(values))), "vary": vary,
                "scores": {"retain": {"whole": {"fid": dict(stat)}}}}
    alpha = {"key": "alpha", "value": 0.5}
    rows = [row("original", "reference", None, [10.0]), row("max-loss", "main", "max-loss", [11.0, 13.0, 12.0]),
            row("max-loss alpha=0.5", "alpha", "max-loss", [9.0], alpha),
            row("ours alpha=0.5", "alpha", "ours", [9.0], alpha),
            row("max-loss 0.1", "retain-size", "max-loss", [9.0])]   # a settings ablation: not a sweep point
    borrow_seed_spreads(rows)
    spread = rows[2]["scores"]["retain"]["whole"]["fid"]["seed_spread"]
    assert spread == {"sd": pytest.approx(1.0), "dof": 2, "from": "max-loss"}
    assert all("seed_spread" not in r["scores"]["retain"]["whole"]["fid"] for r in (rows[0], rows[1], rows[3], rows[4]))



def test_the_wilson_interval_of_a_share_matches_known_values_and_stays_inside_0_1():
    from i2i_unlearn.evaluation.metrics import proportion_interval
    low, high = proportion_interval(0.5, 100)
    assert (low, high) == pytest.approx((0.403832, 0.596168), abs=1e-6)   # Wilson, z = 1.96: 0.5 ± 0.0962
    assert proportion_interval(0.0, 10) == pytest.approx([0.0, 0.277533], abs=1e-6)   # not the normal rule's [0, 0]
    assert proportion_interval(1.0, 10)[1] == 1.0
    wide, narrow = proportion_interval(0.8, 50), proportion_interval(0.8, 5000)
    assert narrow[0] > wide[0] and narrow[1] < wide[1]
    assert proportion_interval(None, 10) is None and proportion_interval(0.5, 0) is None
