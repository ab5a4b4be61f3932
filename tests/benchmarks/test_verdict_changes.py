"""benchmarks/verdict_changes.py: which page verdicts a rerun changed, and by which rule each was judged."""
import json

import verdict_changes


def _stat(mean: float, hw: float, spread: float, replicates: list[float] | None = None) -> dict:
    stat = {"mean": mean, "hw": hw, "values": [mean - spread, mean, mean + spread]}
    return {**stat, "replicates": replicates} if replicates else stat


def _bench(ours_fid: dict, ours_similarity: dict, retrained_fid: dict, retrained_similarity: dict) -> dict:
    def row(name, group, fid, similarity):
        return {"name": name, "group": group, "label": name if group == "main" else None, "setting": "",
                "scores": {"forget": {"whole": {"fid": fid}}, "retain": {"whole": {"similarity": similarity}}}}
    return {"tables": [{"family": "mae", "task": {"name": "center-inpaint", "ratio": 0.5}, "rows": [
        row("retrained", "reference", retrained_fid, retrained_similarity),
        row("ours", "main", ours_fid, ours_similarity)]}]}


def test_a_tie_the_combined_interval_called_becomes_a_paired_win_and_an_unchanged_verdict_is_only_counted():
    resamples = [10.0 + 0.1 * (i % 7) for i in range(50)]   # the images' noise, the same resamples for both rows
    # forget FID: ours 2 higher on every resample; the combined interval sqrt(3² + 3²) = 4.2 holds the difference
    before = _bench(_stat(12.0, 3.0, 0.1), _stat(0.90, 0.01, 0.001), _stat(10.0, 3.0, 0.1), _stat(0.95, 0.01, 0.001))
    after = _bench(_stat(12.0, 3.0, 0.1, [r + 2 for r in resamples]), _stat(0.90, 0.01, 0.001),
                   _stat(10.0, 3.0, 0.1, resamples), _stat(0.95, 0.01, 0.001))
    record = verdict_changes.compare(before, after)
    assert record["compared"] == 2 and record["changed"] == 1   # similarity: worse both times, not listed
    [change] = record["changes"]
    assert (change["row"], change["reference"], change["set"], change["score"]) == (
        "ours", "retrained", "forget", "fid")
    assert (change["before"], change["before_rule"], change["after"], change["after_rule"]) == (
        "tie", "unpaired", "better", "paired")
    assert record["transitions"] == {"tie → better": 1} and record["rules_now"] == {"paired": 1, "unpaired": 1}
    assert "| mae center-inpaint 0.5 | retrained | whole: forget fid | tie (unpaired) | better (paired) |" in (
        verdict_changes.markdown({"command": "c", "before": {"revision": "r", "commit": "0" * 40},
                                  "benches": {"bench-x": record}}))


def test_a_committed_bench_against_itself_changes_nothing_and_a_bad_revision_is_an_error(tmp_path, capsys):
    committed = verdict_changes.bench_at("HEAD", "bench-mae")
    assert committed is not None   # read from git, not from the working tree
    (tmp_path / "bench-mae").mkdir()
    (tmp_path / "bench-mae" / "bench.json").write_text(json.dumps(committed))
    assert verdict_changes.main(["--before", "HEAD", "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "verdict_changes.json").read_text())
    assert record["benches"]["bench-mae"]["compared"] > 100 and record["benches"]["bench-mae"]["changed"] == 0
    assert verdict_changes.main(["--before", "no-such-revision", "--results", str(tmp_path)]) == 2
    assert "not a git revision" in capsys.readouterr().err
