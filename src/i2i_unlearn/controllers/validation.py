"""The fixed validation sample a budgeted run measures at every checkpoint (controllers/budget.py): the retain
and the forget score of a model, each with bootstrap replicates over the sample's images, so the controller
reads the upper end of the retain ratio's interval, not a point estimate on the sample that picks the
checkpoint (which made "in budget" optimistic: 1.027x on validation, 1.097x on test)."""
from __future__ import annotations

import dataclasses

import torch

from i2i_unlearn.checkpoints import sha256_text
from i2i_unlearn.config import DataConfig, TaskConfig, UnlearnConfig
from i2i_unlearn.data import ImageSource, UnlearnSplit, open_split
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluation import metrics
from i2i_unlearn.evaluation.embedders import load_embedder
from i2i_unlearn.models import I2IModel
from i2i_unlearn.models.generation import generate_outputs
from i2i_unlearn.tasks import degrade, make_mask

BUDGET_TASK = TaskConfig("center-inpaint", 0.5)   # the task evaluate and the retain check report

SAMPLE_SEED = 0          # masks and sampling noise of the validation sample: the same at every measurement

RESAMPLES = 200          # bootstrap resamples of the sample's images

INTERVAL_DOC = ("a ratio's 95 % interval: ratio ± 1.96 x the standard deviation of its bootstrap replicates, each "
                "the resampled score over the original's score on the same resample")


def resolved_forget_metric(config: UnlearnConfig) -> str:
    if config.forget_metric is not None:
        return config.forget_metric
    return "hole-mse" if config.budget_metric == "hole-mse" else "recognition"

def uses_evaluator(config: UnlearnConfig) -> bool:
    return config.budget_metric == "fid" or resolved_forget_metric(config) == "recognition"

def _hole_error(outputs: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor,
                resamples: torch.Tensor) -> tuple[float, torch.Tensor]:
    """The hidden pixels' mean squared error of the set (hidden_mse) and its bootstrap replicates."""
    numerator = ((outputs - truth) ** 2 * masks).flatten(1).sum(1).double()
    denominator = (masks.flatten(1).sum(1) * outputs.shape[1]).double()
    replicates = numerator[resamples].sum(dim=1) / denominator[resamples].sum(dim=1)
    return float(numerator.sum() / denominator.sum()), replicates

def retain_validation(split: UnlearnSplit, config: UnlearnConfig) -> tuple[ImageSource, str]:
    """The held-out images the retain budget is measured on: validation images of the retained classes, or with
    a proxy retain set the proxy's own validation images (of its chosen classes)."""
    if config.proxy is None:
        return split.retain_eval, "val"
    proxy_val = open_split(config.proxy).val
    if config.proxy_classes:
        keep = torch.isin(proxy_val.labels, torch.tensor(proxy_val.class_indices(config.proxy_classes)))
        proxy_val = proxy_val.subset(torch.nonzero(keep).flatten())
    return proxy_val, f"val of the proxy {config.proxy.dataset}"

class ValidationProbe:
    """The fixed validation sample of a budgeted run and the two scores measured on it."""

    def __init__(self, config: UnlearnConfig, split: UnlearnSplit, data: DataConfig):
        retain, source = retain_validation(split, config)
        for side, images in (("retain", retain), ("forget", split.forget_eval)):
            if len(images) < 2:
                raise UserError(f"a retain budget is measured on validation images, and the {side} side has "
                                f"{len(images)}: the model's data split needs validation images (val_per_class)")
        # small samples, measured at every checkpoint: held in memory (read once, whatever the data's size)
        self.retain = retain.evenly(config.budget_images).materialize()
        self.forget = split.forget_eval.evenly(config.budget_images).materialize()
        self.retain_resamples = metrics.bootstrap_indices(len(self.retain), RESAMPLES, SAMPLE_SEED)
        self.forget_resamples = metrics.bootstrap_indices(len(self.forget), RESAMPLES, SAMPLE_SEED + 1)
        self.retain_source = source
        self.retain_metric, self.forget_metric = config.budget_metric, resolved_forget_metric(config)
        self.evaluator, self.evaluator_spec, self.real_features, self.forget_indices = None, None, None, []
        if uses_evaluator(config):
            self._load_evaluator(config.budget_evaluator, data, split.forget_class_names)

    def _load_evaluator(self, spec: str, data: DataConfig, forget_classes: list[str]) -> None:
        evaluator = load_embedder(spec)
        channels = (getattr(evaluator, "info", None) or {}).get("channels")
        if channels is not None and channels != data.channels:
            raise UserError(f"the evaluator {spec} reads {channels}-channel images, the model's data has "
                            f"{data.channels}: pass the evaluator of this dataset (--evaluator), or budget with "
                            "--budget-metric hole-mse (no evaluator)")
        if self.forget_metric == "recognition":
            known = evaluator.class_names if evaluator.has_classes else []
            missing = [name for name in forget_classes if name not in known]
            if missing:
                raise UserError(f"the evaluator {spec} cannot recognise {', '.join(missing)} (its classes: "
                                f"{', '.join(known) or 'none'}): pass one trained on this dataset (--evaluator), or "
                                "measure forgetting by --forget-metric hole-mse")
            self.forget_indices = [known.index(name) for name in forget_classes]
        self.evaluator, self.evaluator_spec = evaluator, spec
        if self.retain_metric == "fid":
            self.real_features = evaluator.features(self.retain.images).double()

    def measure(self, model: I2IModel) -> dict:
        """The retain score (lower is better) and the forget score (recognition: lower is more forgotten; hole
        error: higher is) of `model` on the sample, each with its bootstrap replicates over the sample's images
        (the same resamples at every measurement, so two measurements compare paired)."""
        outputs, masks = generate_outputs(model, self.retain.images, BUDGET_TASK, SAMPLE_SEED,
                                          description="budget: measuring the retain sample")
        if self.retain_metric == "fid":
            features = self.evaluator.features(outputs).double()
            retain = float(metrics.fid_from_features(features, self.real_features))
            retain_replicates = metrics.bootstrap_statistic(
                lambda idx: metrics.fid_from_features(features[idx], self.real_features[idx]), self.retain_resamples)
        else:
            retain, retain_replicates = _hole_error(outputs, self.retain.images, masks, self.retain_resamples)
        outputs, masks = generate_outputs(model, self.forget.images, BUDGET_TASK, SAMPLE_SEED,
                                          description="budget: measuring the forget sample")
        if self.forget_metric == "recognition":
            recognised = torch.isin(self.evaluator.predict(outputs), torch.tensor(self.forget_indices)).double()
            forget, forget_replicates = float(recognised.mean()), recognised[self.forget_resamples].mean(dim=1)
        else:
            forget, forget_replicates = _hole_error(outputs, self.forget.images, masks, self.forget_resamples)
        return {"retain": retain, "forget": forget, "retain_replicates": retain_replicates.tolist(),
                "forget_replicates": forget_replicates.tolist()}

    def frame_alone_recognition(self) -> float | None:
        """Forget-class recognition of the forget sample with the hole filled grey: what the frame alone gives
        away. Near the original's recognition, recognition cannot show forgetting (a retrained model keeps it)."""
        if self.forget_metric != "recognition":
            return None
        masks = make_mask(BUDGET_TASK, len(self.forget), self.forget.images.shape[-1], 1)
        return metrics.recognition_rate(self.evaluator, degrade(self.forget.images, masks, 0.5), self.forget_indices)

    def use_hole_error_for_forgetting(self) -> None:
        self.forget_metric = "hole-mse"

    def forget_ratio(self, forget: float, original: float) -> float:
        """The forget score as a multiple of the original's, lower = more forgotten, whatever the metric."""
        return forget / original if self.forget_metric == "recognition" else original / forget

    def describe(self) -> dict:
        evaluator = None
        if self.evaluator is not None:
            evaluator = {"path": self.evaluator_spec, **self.evaluator.describe()}
            evaluator.pop("class_names", None)
        return {"task": dataclasses.asdict(BUDGET_TASK), "seed": SAMPLE_SEED, "evaluator": evaluator,
                "bootstrap": {"resamples": RESAMPLES, "interval": INTERVAL_DOC},
                "retain": {"count": len(self.retain), "source": self.retain_source,
                           "ids_sha256": sha256_text("\n".join(self.retain.ids))},
                "forget": {"count": len(self.forget), "source": "val",
                           "ids_sha256": sha256_text("\n".join(self.forget.ids))}}

