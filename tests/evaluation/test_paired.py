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
