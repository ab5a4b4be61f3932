"""lineage.request_changes: what the benchmarks read to reuse a finished model folder (audit_benchmark._unlearned,
robust._is_retraining) or make it again."""
import json

from i2i_unlearn.lineage import request_changes

PARENT = "a" * 64


def folder_made_by(tmp_path, config: dict, parent: str = PARENT):
    (tmp_path / "config.json").write_text(json.dumps({"weights_sha256": "b" * 64, "unlearning": {
        "method": config["method"], "config": config, "parent_weights_sha256": parent}}))
    return tmp_path


def test_a_folder_made_by_the_same_request_from_the_same_start_has_no_changes(tmp_path):
    made = folder_made_by(tmp_path, {"method": "retrain", "seed": 1, "alpha": 0.1, "retain_classes": ["Dog"]})
    assert request_changes(made, {"method": "retrain", "seed": 1}, PARENT) == []
    # a value left None is filled in by unlearn (e.g. the retain classes): not compared
    assert request_changes(made, {"method": "retrain", "seed": 1, "retain_classes": None}, PARENT) == []


def test_each_difference_is_named(tmp_path):
    made = folder_made_by(tmp_path, {"method": "retrain", "seed": 1, "alpha": 0.1})
    assert request_changes(made, {"method": "ours", "seed": 1}, PARENT) == ["method"]
    assert request_changes(made, {"method": "retrain", "seed": 2, "alpha": 0.2}, PARENT) == ["alpha", "seed"]
    assert request_changes(made, {"method": "retrain", "seed": 1}, "c" * 64) == ["start model"]
    # a knob the folder's lineage never recorded (a newer one) counts as changed
    assert request_changes(made, {"method": "retrain", "noise": "zeros"}, PARENT) == ["noise"]


def test_a_folder_without_a_lineage_differs_in_everything_asked(tmp_path):
    assert request_changes(tmp_path, {"method": "retrain", "seed": 1, "alpha": None}, PARENT) == [
        "method", "seed", "start model"]
    (tmp_path / "config.json").write_text(json.dumps({"weights_sha256": "b" * 64}))   # trained, never unlearned
    assert request_changes(tmp_path, {"method": "retrain"}, PARENT) == ["method", "start model"]


def test_a_whole_request_also_names_a_knob_set_then_and_unset_now(tmp_path):
    """A kept model made with `perturb: 0.5` is not what a config without `perturb` makes (to_dict leaves an unset
    `perturb` out); the retain classes unlearn filled in are not a change."""
    made = folder_made_by(tmp_path, {"method": "undo", "seed": 1, "perturb": 0.5, "retain_size": None,
                                     "retain_classes": ["Dog"]})
    request = {"method": "undo", "seed": 1, "retain_size": None, "retain_classes": None}
    assert request_changes(made, request, PARENT) == []   # a partial request compares what it names
    assert request_changes(made, request, PARENT, whole=True) == ["perturb"]
    assert request_changes(made, {**request, "perturb": 0.5}, PARENT, whole=True) == []
