"""Model cards (README.md in every model folder) and sequential unlearning requests."""
import functools
import hashlib
import json
import re
import shutil

import pytest
import yaml
from conftest import TINY_TOKENIZER, tiny_unlearn_config

from i2i_unlearn.config import DataConfig, TokenizerTrainConfig
from i2i_unlearn.data import load_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.model_card import render_model_card
from i2i_unlearn.models import load_model
from i2i_unlearn.lineage import FORGOTTEN_IDS
from i2i_unlearn.unlearn import unlearn


def card_of(model_dir) -> tuple[dict, str]:
    """(front matter, markdown body) of a folder's README.md, split the way the Hub splits it."""
    lines = (model_dir / "README.md").read_text().split("\n")
    assert lines[0] == "---"
    end = lines.index("---", 1)
    return yaml.safe_load("\n".join(lines[1:end])), "\n".join(lines[end + 1:])


def config_of(model_dir) -> dict:
    return json.loads((model_dir / "config.json").read_text())


def run_of(model_dir) -> dict:
    return json.loads((model_dir / "run.json").read_text())


def ids_hash(ids) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


@functools.cache
def train_part_ids() -> list[tuple[str, str]]:
    """(class name, id) of each image in the tiny models' train part, in split order."""
    train = load_split(DataConfig()).train
    return [(train.class_names[label], image_id) for image_id, label in zip(train.ids, train.labels.tolist())]


def train_ids(keep) -> list[str]:
    """Ids of the train part whose (class name, id) passes `keep`, in split order."""
    return [image_id for name, image_id in train_part_ids() if keep(name, image_id)]


def test_a_trained_model_has_a_card_with_its_data_and_check(tiny_model_dir):
    meta, body = card_of(tiny_model_dir)
    info, record = config_of(tiny_model_dir), run_of(tiny_model_dir)
    assert meta["library_name"] == "i2i-unlearn" and meta["pipeline_tag"] == "image-to-image"
    assert meta["datasets"] == ["animal-mnist"] and "mae" in meta["tags"] and "base_model" not in meta
    assert meta["i2i_unlearn"]["kind"] == "train" and meta["i2i_unlearn"]["unlearning_requests"] == 0
    assert meta["i2i_unlearn"]["weights_sha256"] == info["weights_sha256"]
    assert meta["i2i_unlearn"]["trained_classes"] == info["class_names"]
    assert f"| train | {record['inputs']['split']['train']['count']} |" in body
    assert record["inputs"]["split"]["test"]["ids_sha256"] in body and record["inputs"]["train_images"] in body
    assert f"hole error {record['validation_check']['hidden_mse']} against" in body
    assert "What it was made to forget" not in body


def test_a_tokenizer_folder_has_a_card(tmp_path):
    from i2i_unlearn.train_tokenizer import train_tokenizer
    train_tokenizer(TokenizerTrainConfig(tokenizer=TINY_TOKENIZER, steps=1, batch_size=4, adversarial=False,
                                         checkpoint_every=1, log_every=1), tmp_path / "tokenizer")
    meta, body = card_of(tmp_path / "tokenizer")
    assert meta["i2i_unlearn"]["kind"] == "train-tokenizer" and "tokenizer" in meta["tags"]
    assert "pipeline_tag" not in meta
    assert f"error {run_of(tmp_path / 'tokenizer')['validation_check']['reconstruction_mse']} against" in body


def test_an_unlearned_and_a_retrained_model_have_cards_with_their_lineage(tiny_model_dir, tmp_path):
    base = config_of(tiny_model_dir)["weights_sha256"]
    unlearn(tiny_model_dir, tiny_unlearn_config(alpha=0.5), tmp_path / "no-cat")
    meta, body = card_of(tmp_path / "no-cat")
    record = run_of(tmp_path / "no-cat")
    assert meta["base_model"] == str(tiny_model_dir) and meta["base_model_relation"] == "finetune"
    assert meta["i2i_unlearn"]["kind"] == "unlearn" and meta["i2i_unlearn"]["forgotten_classes"] == ["Cat"]
    assert meta["i2i_unlearn"]["base_weights_sha256"] == base and "machine-unlearning" in meta["tags"]
    assert record["inputs"]["forget_ids_sha256"] in body and record["inputs"]["retain_ids_sha256"] in body
    assert "| 1 | ours | class(es) Cat |" in body and "alpha 0.5," in body and base in body
    check = record["retain_check"]
    assert check["retain"]["count"] > 0 and check["forget"]["count"] > 0
    assert f"hole error {check['retain']['hidden_mse']} / {check['retain']['before_hidden_mse']}" in body

    unlearn(tiny_model_dir, tiny_unlearn_config(method="retrain"), tmp_path / "retrained")
    meta, body = card_of(tmp_path / "retrained")
    info = config_of(tmp_path / "retrained")
    assert load_model(tmp_path / "retrained").pretrained_info["weights_sha256"] == info["weights_sha256"]
    assert meta["i2i_unlearn"]["kind"] == "retrain" and "base_model" not in meta   # trained from scratch
    assert info["unlearning_history"][0]["parent_weights_sha256"] == base
    assert info["unlearning_history"][0]["retain_check"]["retain"]["count"] > 0
    assert run_of(tmp_path / "retrained")["retain_check"] == info["unlearning"]["retain_check"]
    assert "| 1 | retrain | class(es) Cat |" in body and "retain set of the last request only" in body


def test_two_requests_keep_a_chain_and_the_first_forgotten_class_stays_out_of_the_retain_set(
        tiny_model_dir, tiny_evaluator_dir, tmp_path):
    unlearn(tiny_model_dir, tiny_unlearn_config(), tmp_path / "no-cat")
    unlearn(tmp_path / "no-cat", tiny_unlearn_config(forget_classes=["Dog"], alpha=0.5), tmp_path / "no-cat-dog")
    first, second = config_of(tmp_path / "no-cat"), config_of(tmp_path / "no-cat-dog")
    chain = second["unlearning_history"]
    assert len(chain) == 2 and chain[0] == first["unlearning_history"][0]   # the first step, unchanged
    assert chain[0]["parent_weights_sha256"] == config_of(tiny_model_dir)["weights_sha256"]
    assert chain[1]["parent_weights_sha256"] == first["weights_sha256"] and chain[1] == second["unlearning"]
    assert chain[1]["parent_dir"] == str(tmp_path / "no-cat") and chain[1]["config"]["alpha"] == 0.5
    assert chain[1]["forget_ids_sha256"] == ids_hash(train_ids(lambda name, _: name == "Dog"))
    assert chain[1]["retain_ids_sha256"] == ids_hash(train_ids(lambda name, _: name not in ("Cat", "Dog")))
    assert "Cat" not in chain[1]["config"]["retain_classes"] and "Dog" not in chain[1]["config"]["retain_classes"]
    meta, body = card_of(tmp_path / "no-cat-dog")
    assert meta["i2i_unlearn"]["forgotten_classes"] == ["Cat", "Dog"] and meta["base_model"] == str(tmp_path / "no-cat")
    assert body.index("| 1 | ours | class(es) Cat |") < body.index("| 2 | ours | class(es) Dog |")

    with pytest.raises(UserError, match="Cat was forgotten by an earlier request"):
        unlearn(tmp_path / "no-cat", tiny_unlearn_config(forget_classes=["Dog"], retain_classes=["Bear", "Cat"]),
                tmp_path / "refused")

    # evaluating the chain scores both forgotten classes as forgotten, not Cat as retained
    from i2i_unlearn.config import TaskConfig
    from i2i_unlearn.evaluation.evaluate import evaluate_model_dirs
    results = evaluate_model_dirs({"original": tiny_model_dir, "no-cat-dog": tmp_path / "no-cat-dog"},
                                  TaskConfig("center-inpaint", 0.5), tiny_evaluator_dir, tmp_path / "eval",  # a Path is fine
                                  max_images=20)   # a sample of each set: the sets are what is checked
    assert results["forget_classes"] == ["Cat", "Dog"]


def test_images_forgotten_by_file_list_stay_out_of_later_retain_sets(tiny_model_dir, tmp_path):
    bears = train_ids(lambda name, _: name == "Bear")[:5]
    (tmp_path / "forget.txt").write_text("\n".join(bears) + "\n")
    unlearn(tiny_model_dir, tiny_unlearn_config(forget_classes=[], forget_files=str(tmp_path / "forget.txt")),
            tmp_path / "no-bears")
    unlearn(tmp_path / "no-bears", tiny_unlearn_config(), tmp_path / "no-bears-cat")
    expected = sorted(hashlib.sha256(i.encode()).hexdigest() for i in bears)
    assert (tmp_path / "no-bears-cat" / FORGOTTEN_IDS).read_text().split() == expected   # carried forward
    retained = train_ids(lambda name, image_id: name != "Cat" and image_id not in bears)
    assert config_of(tmp_path / "no-bears-cat")["unlearning"]["retain_ids_sha256"] == ids_hash(retained)
    assert card_of(tmp_path / "no-bears-cat")[0]["i2i_unlearn"]["forgotten_classes"] == ["Cat"]

    shutil.copytree(tmp_path / "no-bears", tmp_path / "lost-list")
    (tmp_path / "lost-list" / FORGOTTEN_IDS).unlink()
    with pytest.raises(UserError, match=f"its {FORGOTTEN_IDS} is missing"):
        unlearn(tmp_path / "lost-list", tiny_unlearn_config(), tmp_path / "refused")


def test_five_requests_in_a_row_record_every_step_and_lose_nothing(tiny_model_dir, tmp_path):
    requests = [("Cat", "ours"), ("Dog", "max-loss"), ("Horse", "noisy-label"), ("Bird", "retain-label"),
                ("Sheep", "ours")]
    parent, folders = tiny_model_dir, []
    for number, (forget, method) in enumerate(requests, 1):
        out = tmp_path / f"step-{number}"
        unlearn(parent, tiny_unlearn_config(forget_classes=[forget], method=method, steps=2), out)
        folders.append(out)
        chain = config_of(out)["unlearning_history"]
        assert [step["forget_classes"] for step in chain] == [[name] for name, _ in requests[:number]]
        assert [step["method"] for step in chain] == [name for _, name in requests[:number]]
        if number > 1:   # every earlier step is kept exactly as its own folder recorded it
            assert chain[:-1] == config_of(parent)["unlearning_history"]
            assert chain[-1]["parent_weights_sha256"] == config_of(parent)["weights_sha256"]
        retained = chain[-1]["config"]["retain_classes"]   # None: every class not forgotten (the first request)
        assert (retained is None) == (number == 1)
        assert not {name for name, _ in requests[:number]} & set(retained or [])
        check = chain[-1]["retain_check"]
        assert check["retain"]["count"] > 0 and check["retain"]["hidden_mse"] > 0
        assert check["retain"]["before_hidden_mse"] > 0 and check["forget"]["count"] > 0
        meta, body = card_of(out)
        assert meta["i2i_unlearn"]["forgotten_classes"] == [name for name, _ in requests[:number]]
        assert len(re.findall(r"^\| \d+ \| ", body, re.MULTILINE)) == number   # one table row a request
        parent = out

    # the retain quality of each step stays in the last folder's record and card; no earlier folder changed
    last = config_of(folders[-1])["unlearning_history"]
    for number, folder in enumerate(folders, 1):
        assert last[number - 1]["retain_check"] == config_of(folder)["unlearning"]["retain_check"]
        assert run_of(folder)["retain_check"] == last[number - 1]["retain_check"]
        assert load_model(folder).pretrained_info["weights_sha256"] == config_of(folder)["weights_sha256"]
    assert len(config_of(folders[0])["unlearning_history"]) == 1
    body = card_of(folders[-1])[1]
    for number, step in enumerate(last, 1):
        assert f"| {number} | {step['method']} | class(es) {step['forget_classes'][0]} |" in body
        assert step["forget_ids_sha256"] in body and step["parent_weights_sha256"] in body


def test_any_class_name_or_path_keeps_the_front_matter_valid():
    hostile = ["Cat\n---\nlibrary_name: evil", "a: b", "|pipe|", "<script>x</script>", "`tick`", "- list", "#",
               "'quote\"", "ünï", ""]
    info = {"family": "mae", "weights_sha256": "0" * 64, "dataset": "ds\n---", "class_names": hostile,
            "training": {"classes": hostile[:3], "data": {"dataset": "ds\n---", "root": "/x/---\n# y"}},
            "unlearning_history": [{"method": "ours", "config": {"method": "ours", "retain_classes": hostile[3:]},
                                    "forget_classes": hostile[:3], "parent_dir": "dir\n---\nz",
                                    "parent_weights_sha256": "1" * 64}]}
    card = render_model_card(info, {"kind": "unlearn", "inputs": {"model_dir": "m"}}, "name\n---")
    lines = card.split("\n")
    meta = yaml.safe_load("\n".join(lines[1:lines.index("---", 1)]))
    assert meta["i2i_unlearn"]["trained_classes"] == hostile[:3] and meta["datasets"] == ["ds\n---"]
    assert meta["base_model"] == "dir\n---\nz" and meta["i2i_unlearn"]["forgotten_classes"] == hostile[:3]
    body = "\n".join(lines[lines.index("---", 1) + 1:])
    assert "<script>" not in body and "\n---" not in body
    row = next(line for line in body.split("\n") if line.startswith("| 1 |"))
    assert row.count(" | ") == 7   # the table row keeps its 8 cells: a | in a class name is escaped


def test_an_imported_model_card_names_its_source_and_not_a_recipe():
    imported = {"family": "mae", "source": "/models/vit-mae", "source_class": "ViTMAEForPreTraining",
                "files_sha256": {"config.json": "a" * 64, "model.safetensors": "b" * 64},
                "training_recipe": "unknown: the defaults"}
    info = {"family": "mae", "weights_sha256": "0" * 64, "dataset": "animal-mnist", "class_names": ["Cat"],
            "training": {"steps": 4000, "optim": {"lr": 0.1}, "data": {}}, "imported": imported}
    card = render_model_card(info, {"kind": "import"}, "mine")
    assert "imported from a Hugging Face checkpoint" in card and "/models/vit-mae" in card
    assert "b" * 64 in card and "Recipe: unknown: the defaults." in card and "4000 steps" not in card


def test_the_card_names_every_kind_of_proxy_retain_set():
    # a proxy of the teacher's own completions of noise has no dataset: it once read "every other image"
    from i2i_unlearn.model_card import _proxy_text
    assert _proxy_text({"proxy": {"dataset": "fashion-mnist"}}) == "proxy set fashion-mnist"
    assert _proxy_text({"proxy": {"dataset": "fashion-mnist"}, "proxy_transform": ["binarize", "augment"]}) == \
        "proxy set fashion-mnist (binarize, augment)"
    assert _proxy_text({"proxy_teacher": {"inputs": "noise", "noise": "uniform"}}) == \
        "the original's own completions of uniform noise"
    assert _proxy_text({"proxy": {"dataset": "fashion-mnist"}, "proxy_teacher": {"inputs": "proxy"}}) == \
        "the original's own completions of proxy set fashion-mnist"


def test_the_card_says_when_the_forget_target_has_noise_around_the_hole():
    from i2i_unlearn.model_card import _knobs
    knobs = {"method": "ours", "alpha": 0.05, "steps": 500, "batch_size": 32, "noise": "batch-gaussian",
             "feature_norm": "none", "seed": 0, "optim": {"lr": 2e-4}}
    assert "around the hole" not in _knobs(knobs)
    assert "noise batch-gaussian around the hole too (noise\\_context)" in _knobs({**knobs, "noise_context": "noise"})
