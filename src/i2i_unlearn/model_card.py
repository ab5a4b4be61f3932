"""The README.md model card of every model folder the tool writes, in the Hugging Face format.

One function writes it, from the folder's own config.json and run.json, so a card never claims
more than its folder records: YAML front matter (written with yaml.safe_dump, so a class name or
a path of any kind keeps it valid) and markdown text: what the model was trained on, what it was
made to forget and how, the checks recorded when the folder was written, and its lineage by sha256.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from i2i_unlearn.checkpoints import read_config_dir, write_text_atomic
from i2i_unlearn.runs import RUN_RECORD, forgotten_classes, unlearning_history
from i2i_unlearn.text import escape_markdown

MODEL_CARD = "README.md"
TOKENIZER_FAMILY = "vq-tokenizer"   # models/vqgan.py; not imported, to keep this module light
FILES = {   # what a model folder may hold, in the order a reader wants them
    "config.json": "family, model config, training recipe and the unlearning chain; the weights' sha256",
    "model.safetensors": "the weights (safetensors, no pickle)",
    "run.json": "the run's whole config, its inputs' hashes, library versions and git commit",
    "train_log.jsonl": "training loss, one line per logging interval",
    "unlearn_log.jsonl": "unlearning loss terms, one line per logging interval",
    "forgotten_ids.sha256": "sha256 of every image id forgotten by a file list so far (later requests "
                            "keep those images out of their retain set)",
}
# what a card escapes: the report's characters but & (an entity instead), and # and ~ (headings, strikethrough)
_MARKDOWN_SPECIAL = "\\`*_[]<>#|~"


def write_model_card(model_dir: str | Path) -> str:
    """Write (or replace) model_dir/README.md from the folder's records; returns the card."""
    model_dir = Path(model_dir)
    card = render_model_card(read_config_dir(model_dir), _read_run_record(model_dir), model_dir.name,
                             [name for name in FILES if (model_dir / name).is_file()])
    write_text_atomic(model_dir / MODEL_CARD, card)
    return card


def render_model_card(info: dict, record: dict, name: str, files: list[str] = ()) -> str:
    history = unlearning_history(info)
    meta = yaml.safe_dump(front_matter(info, record), sort_keys=False, allow_unicode=True, width=10**6)
    sections = [[f"# {_md(name)}", "", _summary(info, record, history)], _training(info, record)]
    if history:
        sections.append(_forgetting(info, history))
    if record.get("budget"):
        sections.append(_budget(record["budget"]))
    if record.get("membership_stop"):
        sections.append(_membership_stop(record["membership_stop"]))
    sections += [_checks(record, history), _lineage(info, record, history), _files(files)]
    return f"---\n{meta}---\n\n" + "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def front_matter(info: dict, record: dict) -> dict:
    history = unlearning_history(info)
    family = info.get("family")
    kind = _kind(record, history)
    tags = ["i2i-unlearn", str(family)]
    tags += ["vq-gan", "tokenizer"] if family == TOKENIZER_FAMILY else ["image-to-image", "inpainting"]
    if history:
        tags += ["machine-unlearning", f"unlearned-{_last_method(history)}"]
    meta = {"library_name": "i2i-unlearn", "tags": tags}
    if family != TOKENIZER_FAMILY:
        meta["pipeline_tag"] = "image-to-image"
    dataset = info.get("dataset") or _training_data(info).get("dataset")
    if dataset:
        meta["datasets"] = [dataset]
    if history and kind != "retrain":   # a retrained model starts from scratch: it has no base weights
        meta["base_model"] = _parent_dir(history[-1], record)
        meta["base_model_relation"] = "finetune"
    meta["i2i_unlearn"] = {
        "kind": kind, "family": family, "weights_sha256": info.get("weights_sha256"),
        "trained_classes": (info.get("training") or {}).get("classes") or info.get("class_names"),
        "forgotten_classes": forgotten_classes(info), "unlearning_requests": len(history),
        "base_weights_sha256": history[0].get("parent_weights_sha256") if history else None}
    budget = record.get("budget")
    if budget:
        meta["i2i_unlearn"]["retain_budget"] = {"budget": budget["retain_budget"], "metric": budget["metric"],
                                                "within_budget": budget["in_budget"],
                                                "kept_step": budget["chosen"]["step"]}
    return meta


# --- sections -----------------------------------------------------------------------------------

def _summary(info: dict, record: dict, history: list[dict]) -> str:
    family, kind = info.get("family"), _kind(record, history)
    if family == TOKENIZER_FAMILY:
        return ("The VQ tokenizer of the `vqgan` family, trained as a VQ-GAN by `i2i-unlearn train-tokenizer`. "
                "A vqgan model is trained on top of it and keeps it frozen. Load it with "
                "`i2i_unlearn.models.vqgan.VQTokenizer.from_pretrained(<this folder>)`.")
    made = {"train": "trained by `i2i-unlearn train`",
            "retrain": "retrained from scratch on the retain data by `i2i-unlearn unlearn --method retrain`, "
                       "the gold standard of unlearning",
            "unlearn": f"made to forget by `i2i-unlearn unlearn --method {_md(_last_method(history))}`",
            "import": "imported from a Hugging Face checkpoint by `i2i-unlearn import`",
            }.get(kind, f"written by i2i-unlearn ({_md(kind)})")
    return (f"A `{_md(family)}` image-to-image model (it fills the hidden part of an image: inpainting, "
            f"outpainting), {made}. Load it with `i2i_unlearn.load_model(<this folder>)`; its weights are "
            "checked against the sha256 in its config.json.")


def _training(info: dict, record: dict) -> list[str]:
    training = info.get("training") or {}
    data = _training_data(info)
    lines = ["## Training data", ""]
    dataset = info.get("dataset") or data.get("dataset", "unknown")
    where = f" from the folder {_md(data['root'])}" if data.get("root") else ""
    lines.append(f"- Dataset: {_md(dataset)}{where}, {data.get('image_size', '?')} px, "
                 f"{data.get('channels', '?')} channel(s). Held out per class and never trained on: "
                 f"{data.get('test_per_class', '?')} test and {data.get('val_per_class', 0)} validation images "
                 f"(split seed {data.get('split_seed', '?')}).")
    class_names = info.get("class_names") or []
    classes = training.get("classes")
    if classes:
        lines.append(f"- Classes trained on: {_names(classes)} (of {len(class_names) or '?'} in the dataset).")
    elif class_names:
        lines.append(f"- Classes trained on: all {len(class_names)} of the dataset ({_names(class_names)}).")
    imported = info.get("imported") or {}
    if imported:   # the recipe of an imported model is not known: `training` holds the tool's defaults
        lines.append(f"- Recipe: {_md(imported.get('training_recipe', 'unknown'))}.")
    elif training:
        optim = training.get("optim") or {}
        ema = f", EMA of the weights (decay {training['ema_decay']})" if training.get("ema_decay") else ""
        lines.append(f"- Recipe: {training.get('steps', '?')} steps, batch {training.get('batch_size', '?')}, "
                     f"{_md(optim.get('optimizer', '?'))} lr {optim.get('lr', '?')} ({_md(optim.get('schedule', '?'))}"
                     f", {optim.get('warmup_steps', 0)} warm-up steps), seed {training.get('seed', '?')}{ema}.")
    inputs = record.get("inputs") or {}
    if "train_count" in inputs:
        what = "the retain set of the last request only" if record.get("kind") == "retrain" else "the images above"
        lines.append(f"- This run trained on {what}: {inputs['train_count']} images, content sha256 "
                     f"`{_md(inputs.get('train_images'))}`.")
    parts = inputs.get("split")
    if parts:
        lines += ["", "Split of the dataset (sha256 of the sorted image-id list of each part):", "",
                  "| part | images | ids sha256 |", "|---|---|---|"]
        lines += [f"| {_md(part)} | {value.get('count')} | `{_md(value.get('ids_sha256'))}` |"
                  for part, value in parts.items()]
    return lines


def _proxy_text(config: dict) -> str:
    """The proxy retain set as the run recorded it: its dataset and transforms, or the teacher's own outputs."""
    proxy, teacher = config.get("proxy") or {}, config.get("proxy_teacher")
    source = f"proxy set {_md(proxy.get('dataset'))}" if proxy else ""
    if config.get("proxy_transform"):
        source += f" ({_md(', '.join(config['proxy_transform']))})"
    if teacher:
        inputs = source if teacher.get("inputs") == "proxy" else f"{_md(teacher.get('noise', ''))} noise"
        return f"the original's own completions of {inputs}"
    return source


def _forgetting(info: dict, history: list[dict]) -> list[str]:
    forgotten = forgotten_classes(info)
    lines = ["## What it was made to forget", "",
             f"{len(history)} unlearning request(s), oldest first. Classes forgotten so far: "
             f"{_names(forgotten) if forgotten else 'none (images only)'}. A later request keeps every class "
             "forgotten here out of its retain set by default (naming one in `retain_classes` is refused), and "
             "images forgotten by file list stay out of it too, so no later step trains on them again.", "",
             "| # | method | forgot | forget set | retain set | knobs | retain hole error after / before | "
             "forget hole error after / before |",
             "|---|---|---|---|---|---|---|---|"]
    for number, step in enumerate(history, 1):
        config = step.get("config") or {}
        if config.get("forget_files"):
            forgot = f"images of a file list (classes touched: {_names(step.get('forget_classes', []))})"
        else:
            forgot = f"class(es) {_names(step.get('forget_classes', []))}"
        if config.get("proxy") or config.get("proxy_teacher"):
            retain = _proxy_text(config)
        elif config.get("retain_classes") is not None:
            retain = f"classes {_names(config['retain_classes'])}"
        else:
            retain = "every other image"
        check = step.get("retain_check") or {}
        lines.append(" | ".join([
            f"| {number}", _md(step.get("method", config.get("method", "?"))), forgot,
            f"{step.get('forget_count', '?')} images, ids sha256 `{_short(step.get('forget_ids_sha256'))}`",
            f"{retain}: {step.get('retain_count', '?')} images, ids sha256 `{_short(step.get('retain_ids_sha256'))}`",
            _knobs(config), _error_pair(check.get("retain")), _error_pair(check.get("forget")) + " |"]))
    return lines


def _membership_stop(stop: dict) -> list[str]:
    """A file request that stopped on the membership attack (controllers/membership.py): the level, the kept step, the path."""
    probe, chosen = stop["probe"], stop["chosen"]
    lines = ["## Membership stop", "",
             f"The forgotten files ({probe['members']['count']}) were scored against never-seen validation images of "
             f"their classes ({probe['non_members']['count']}) by the membership attack at every checkpoint; the run "
             f"was to stop once its AUC was at most {stop['stop_at_auc']} (0.5: told apart no better than chance).",
             "", f"- {_md(stop['message'])}.", "", "| step | membership AUC |", "|---|---|"]
    lines += [f"| {entry['step']}{' (kept)' if entry['step'] == chosen['step'] else ''} | {entry['auc']:.3f} |"
              for entry in stop["path"]]
    return lines


def _budget(budget: dict) -> list[str]:
    """A budgeted run (controllers/budget.py): the budget, the checkpoint kept, and the path the controller took."""
    sample = budget["sample"]
    chosen = budget["chosen"]
    goal = (f"at most {budget['forget_goal']}x the original's" if budget.get("forget_goal") is not None
            else "as low as the budget allows")
    verdict = ("within the budget." if budget["in_budget"]
               else f"**OVER BUDGET**: {_md(budget['message'])}.")
    stopped = (f"stopped early at step {budget['stopped_early_at']} (goal met)" if budget.get("stopped_early_at")
               else "ran every step")
    control = budget["control"]
    share = control.get("share_of_wall_time")
    lines = ["## Retain budget", "",
             f"A budgeted run: the retain score ({_md(budget['metric'])}) on {sample['retain']['count']} held-out "
             f"images ({_md(sample['retain']['source'])}) could grow to {budget['retain_budget']}x the original's; "
             f"the forget score ({_md(budget['forget_metric'])}, {sample['forget']['count']} validation images) was "
             f"to be {goal}. Center 1/2 inpainting, fixed masks. The forget weight alpha was controlled at every "
             f"checkpoint ({_md(budget['update'])}), and the run {stopped}.", "",
             f"- Kept: step {chosen['step']}, retain {chosen['retain_ratio']:.4f}x the original's"
             + (f" (at most {chosen['retain_ratio_hi']:.4f}x)" if "retain_ratio_hi" in chosen else "")
             + f", forget {chosen['forget_ratio']:.4f}x: {verdict}",
             *([f"- **FORGOT NOTHING MEASURABLE**: the forget score's 95 % interval reaches the original's "
                f"({chosen['forget_ratio_hi']:.4f}x)."] if budget.get("forgot_measurably") is False else []),
             *([f"- The frame alone was recognised as the forgotten class {budget['frame_alone_recognition']:.2f} of "
                "the time, so forgetting was measured by the hole error."]
               if budget.get("frame_alone_recognition") is not None else []),
             f"- Cost of control: {control['measurements']} measurements, {control['measure_seconds']} s"
             + (f" ({share:.1%} of the run's wall time)." if share is not None else "."), "",
             "| step | alpha | retain (x original) | forget (x original) | within budget | next alpha |",
             "|---|---|---|---|---|---|"]
    for entry in budget["path"]:
        kept = " (kept)" if entry["step"] == chosen["step"] and entry.get("candidate", True) else ""
        lines.append(f"| {entry['step']}{kept} | {entry['alpha']:.4g} | {entry['retain_ratio']:.4f} | "
                     f"{entry['forget_ratio']:.4f} | {'yes' if entry['in_budget'] else 'no'} | "
                     f"{entry['next_alpha']:.4g} |")
    return lines


def _checks(record: dict, history: list[dict]) -> list[str]:
    recorded = []
    validation = record.get("validation_check")
    if validation and "hidden_mse" in validation:
        recorded.append(f"- Training check: hole error {validation['hidden_mse']} against "
                        f"{validation['mean_fill_hidden_mse']} for the mean-image fill{_verdict(validation)}.")
    elif validation and "reconstruction_mse" in validation:
        recorded.append(f"- Reconstruction check: error {validation['reconstruction_mse']} against "
                        f"{validation['mean_image_mse']} for the mean image{_verdict(validation)}.")
    check = history[-1].get("retain_check") if history else None
    if check:
        for side, what in (("retain", "retained classes (should stay)"), ("forget", "forgotten images (should rise)")):
            if check.get(side):
                recorded.append(f"- Last request, {what}: hole error {_error_pair(check[side])}, "
                                f"{check[side].get('count')} validation images.")
    return ["## Checks recorded when this folder was written", "",
            "Hole error: mean squared error over the hidden pixels of center 1/2 inpainting, on held-out "
            "validation images (pixels in [0, 1]).", "",
            *(recorded or ["- None recorded."]),
            "- FID, KID, recognition of the forgotten classes and the rest: `i2i-unlearn evaluate "
            "--model NAME=<this folder> ...` writes them to its own output folder."]


def _lineage(info: dict, record: dict, history: list[dict]) -> list[str]:
    lines = ["## Lineage", "",
             f"- This model's weights (model.safetensors): sha256 `{_md(info.get('weights_sha256'))}`."]
    if history:
        first = history[0]
        lines.append(f"- Base model, before any unlearning: the folder {_md(_parent_dir(first, record))}, "
                     f"weights sha256 `{_md(first.get('parent_weights_sha256'))}`.")
        lines += ["- Chain of requests, oldest first (each result is the next request's input):", ""]
        results = [step.get("parent_weights_sha256") for step in history[1:]] + [info.get("weights_sha256")]
        for number, (step, result) in enumerate(zip(history, results), 1):
            lines.append(f"  {number}. {_md(step.get('method', '?'))} on {_md(_parent_dir(step, record))} "
                         f"(`{_md(step.get('parent_weights_sha256'))}`) gave `{_md(result)}`; forget ids sha256 "
                         f"`{_md(step.get('forget_ids_sha256'))}`, retain ids sha256 "
                         f"`{_md(step.get('retain_ids_sha256'))}`.")
    imported = info.get("imported") or {}
    if imported:
        read = imported.get("files_sha256") or {}
        files = ", ".join(f"{_md(name)} `{_md(digest)}`" for name, digest in read.items())
        lines.append(f"- Imported from the {_md(imported.get('source_class', '?'))} folder "
                     f"{_md(imported.get('source', '?'))}; sha256 of the files read: {files or 'not recorded'}.")
    tokenizer = (info.get("model") or {}).get("tokenizer_path")
    if tokenizer:
        lines.append(f"- VQ tokenizer it was built on: the folder {_md(tokenizer)}.")
    made = record.get("versions") or {}
    if made:
        libraries = ", ".join(f"{_md(k)} {_md(v)}" for k, v in made.items())
        lines.append(f"- Made with {libraries}; git commit `{_md(record.get('git_commit'))}`; "
                     f"wall time {record.get('wall_time_total_s', record.get('wall_time_s'))} s.")
    return lines


def _files(files: list[str]) -> list[str]:
    return ["## Files", "", *[f"- `{name}`: {FILES[name]}." for name in files]]


# --- helpers ------------------------------------------------------------------------------------

def _read_run_record(model_dir: Path) -> dict:
    try:
        record = json.loads((model_dir / RUN_RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return {}   # a folder without a readable run.json still gets a card from its config.json
    return record if isinstance(record, dict) else {}


def _last_method(history: list[dict]) -> str:
    return (history[-1].get("method") or history[-1].get("config", {}).get("method", "?")) if history else "?"


def _verdict(check: dict) -> str:
    learned = "yes" if check.get("learned") else "NO"
    return f" ({check.get('ratio_to_mean_fill')}x; learned: {learned}), {check.get('count')} validation images"


def _kind(record: dict, history: list[dict]) -> str:
    return record.get("kind") or ("unlearn" if history else "train")


def _training_data(info: dict) -> dict:
    return (info.get("training") or {}).get("data") or {}


def _parent_dir(step: dict, record: dict) -> str:
    return str(step.get("parent_dir") or (record.get("inputs") or {}).get("model_dir") or "unknown")


def _knobs(config: dict) -> str:
    if config.get("method") == "retrain":
        return f"trained from scratch with the base model's recipe, seed {config.get('seed')}"
    optim = config.get("optim") or {}
    retain_batch = f"+{config['retain_batch_size']}" if config.get("retain_batch_size") else ""
    budget = ""
    if config.get("retain_budget"):
        budget = f" (the start: a retain budget of {config['retain_budget']}x controlled it)"
    context = " around the hole too (noise\\_context)" if config.get("noise_context") == "noise" else ""
    return (f"alpha {config.get('alpha')}{budget}, lr {optim.get('lr')}, {config.get('steps')} steps, batch "
            f"{config.get('batch_size')}{retain_batch}, noise {_md(config.get('noise'))}{context}, "
            f"feature norm {_md(config.get('feature_norm'))}, seed {config.get('seed')}")


def _error_pair(side: dict | None) -> str:
    if not side:
        return "not recorded"
    return f"{side.get('hidden_mse')} / {side.get('before_hidden_mse')} ({side.get('ratio_to_before')}x)"


def _names(names) -> str:
    return ", ".join(_md(name) for name in names)


def _short(digest) -> str:
    return f"{_md(digest)[:12]}…" if digest else "?"


def _md(value) -> str:
    """Any value as inert markdown on one line: class names, paths and ids are user data."""
    return escape_markdown(" ".join(str(value).split()).replace("&", "&amp;"), special=_MARKDOWN_SPECIAL)
