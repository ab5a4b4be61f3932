"""The audit of method.md section 4b: does forgetting survive an attacker?

- Membership inference. Each image is scored by how well a model restores it: the family's own
  loss on the hidden region (MAE: pixel MSE of the hidden patches; diffusion: the denoising error
  at fixed timesteps; VQ-GAN: cross-entropy of the hidden tokens) under several masks, the same
  masks and randomness for every model. Members are the forgotten training images, non-members
  never-seen images (the test split) of the same classes. The plain attack scores an image by
  -mean log error (a low error says "seen"); the calibrated attack (LiRA / U-MIA style difficulty
  calibration) by -(mean log error - mean log error of a reference model), so an image that is
  simply easy for every model no longer looks like a member. AUC and TPR at 1 % and 5 % FPR;
  success is "as indistinguishable as the retrained model", not AUC 0.5.
- The tell: whether a model's forget outputs give the forgetting away. (a) The shipped evaluator
  has a "no object" class (trained on noise, grey and mean-image fills): its share on the forget
  outputs; with an evaluator without that class, the share of outputs whose top class
  probability is below LOW_CONFIDENCE stands in (both are recorded whenever they can be). (b) A
  linear probe (logistic regression in torch, k-fold cross-validated, folds split by input image)
  on the evaluator's features, trained to tell one model's forget outputs from the reference's
  for the same inputs: 0.5 = indistinguishable.
- Per-image forgetting: a file list has no never-seen twin, so its members are the forgotten
  images and its non-members the never-seen images of the classes they belong to;
  `forgotten_files_split` gives `evaluate` the forgotten images as its forget set and every
  never-seen image as its retain set (retain quality as for classes).

`run_audit` (the `i2i-unlearn audit` command) writes audit.json, roc.png, grid_forget.png and,
with a relearning budget (relearn.py), relearn.png.
"""
from i2i_unlearn.evaluation.audit.membership import (DEFAULT_MASKS, DEFAULT_TIMESTEPS, attack_scores, conditions,
                                                   membership_audit, restoration_errors, roc_summary)
from i2i_unlearn.evaluation.audit.probe import confidence_shares, linear_probe, tell_audit
from i2i_unlearn.evaluation.audit.run import AuditOptions, run_audit, summary_lines
from i2i_unlearn.evaluation.audit.sets import AuditSets, audit_sets, forgotten_files_split, model_forget_request
