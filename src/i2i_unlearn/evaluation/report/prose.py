"""The report's prose: the notes that explain each section and the captions of its figures, shared by the HTML
and the Markdown (the document holds them; the renderers only escape them)."""
from __future__ import annotations

from i2i_unlearn.evaluation.audit.relearn import RETURN_FRACTION

GRID_CAPTION = "rows: input (hidden region tinted), each model's output, ground truth."
CLASS_GRID_CAPTION = ("one row per class (its first test image); columns: input (hidden region tinted), each "
                      "model's output in the order of the tables, ground truth.")
TSNE_CAPTION = "T-SNE of the evaluator's embeddings of each model's outputs, forget vs retain."
LEGEND = ("↑ higher is better on that set, ↓ lower is better, no arrow: neither. "
          "KID is mean ± std over subsets (no ± where a set is no larger than a subset, 100 images: every subset "
          "is then the whole set); – means not measured; rows marked (ref) are references, not models.")
INSTRUMENT_NOTE = ("A classifier evaluator can be biased by the very outputs unlearning produces (in a trial, "
                   "noise-textured fills were called one animal whatever the image), so this table shows what it "
                   "predicts for real test images whose hidden region is filled with noise, flat grey or the mean "
                   "image: a trustworthy instrument gives the forget classes no large share.")
INSTRUMENT_KEY_HTML = "Forget classes are shaded; each fill's largest share is bold."
INSTRUMENT_KEY_MD = "Each fill's largest share is bold."
INTERVAL_NOTE = ("± is a 95 % bootstrap interval over the test images (settings: bootstrap), of each model alone. "
                 "Two models are compared by the interval of their difference (the next section), not by whether "
                 "their intervals overlap.")
PAIRED_NOTE = ("Each model's score minus {base}'s on the same test images, ± the 95 % interval of that difference "
               "over the same bootstrap resamples (the hard images both rows share cancel, so this interval is "
               "narrower than two overlapping ± intervals suggest). (better) or (worse) when it leaves out 0, "
               "(tie) when it holds 0; scores without a better side are not judged. One evaluation: the interval "
               "covers the test images, not the spread between unlearning runs of other seeds.")
HOLE_NOTE = ("The same scores on the hidden region alone, since the visible frame dominates whole-image numbers: "
             "each image is cropped to the bounding box of its hidden pixels and resized to the evaluator's input "
             "size (settings: hole_view). The ground-truth row shows what real hidden regions score.")
COLLATERAL_NOTE = ("Each retain class alone, against the original: FID as a ratio (above 1 is damage), similarity "
                   "and the evaluator's recognition of that class as differences (below 0 is damage). (tie): the "
                   "paired interval of the difference (the class's images resampled alike for both rows) holds 0.")
FRONT_NOTE = ("What each retain budget buys (`unlearn --front`, scored on validation images while unlearning): per "
              "budget, the checkpoint the run kept, its retain and forget scores as multiples of the original's (lower "
              "is better on both).")
AUDIT_NOTE = ("Does the forgetting survive an attacker (`i2i-unlearn audit`)? Membership inference scores each image "
              "by how well a model restores its hidden region (the family's own loss, under several masks) and calls "
              "the best-restored images members: the forgotten training images, to be told from never-seen images of "
              "the same classes. AUC 0.5: indistinguishable. Even a model that never saw the forgotten images need not "
              "score 0.5 (the two sets can differ in difficulty), so the target is the retrained model's AUC, not 0.5. "
              "The calibrated AUC scores each image by its error relative to the reference model's on the same image "
              "(difficulty calibration, as in LiRA), so an image that is easy for every model no longer looks like a "
              "member. TPR at 1 % or 5 % FPR: the share of forgotten images caught while calling at most that share of "
              "never-seen images members.")
TELL_NOTE = ("The tell: do a model's outputs on forget inputs give the forgetting away? Forget recognition: the "
             "evaluator's share of those outputs in a forget class. No-object share: outputs it calls \"no object\" "
             "(its class for noise, grey and mean-image fills); the low-confidence share (top class probability "
             "below a threshold) stands in for an evaluator without that class. The probe: the cross-validated "
             "accuracy (± its spread over the folds) of a linear classifier on the evaluator's features telling a "
             "model's outputs from the probe reference's for the same inputs: 0.5 means indistinguishable, 1 a "
             "giveaway. Forget FID: those outputs against the real images.")
RELEARN_NOTE = ("Relearning: a copy of each model is fine-tuned on a few forget-class training images (the same "
                "images, masks, order and learning rate for every model) and its forget-class recognition on "
                "never-seen forget-class images measured after each number of steps. A model whose recognition "
                "comes back much sooner than the retrained model's hid the knowledge instead of removing it. "
                f"Steps back to the original's: the first step whose recognition is at least {RETURN_FRACTION:.0%} "
                "of the original's "
                "before relearning; it tells hidden from removed knowledge where half the original's does not (a "
                "retrained model whose visible frame keeps the class recognisable starts above half). Speed-up: "
                "the reference's steps to half the original's recognition over this model's (above 1: relearns "
                "faster; – when either starts there already or never gets there). Each attack runs once per attack "
                "seed (its own images and order; the tables show the mean). Two cheap attacks join it: fine-tuning "
                "on retain images only, and quantizing the weights. Outside the retrained band: how far the model's "
                "curve lies outside the range of the retrained models' curves over every training and attack seed, "
                "on average over the steps (0: inside throughout; above: it relearned more than a model that never "
                "saw the class). A retrained model of the band is read against the band of the others (held out of its own: "
                "the ideal row).")
ROC_CAPTION = ("ROC curves of the membership attack (left) and, where there is a reference, of the attack calibrated "
               "by it (right); the dotted diagonal is chance.")
LIRA_ROC_CAPTION = ("The per-example attack's ROC on log axes (each forgotten image's likelihood ratio against those "
                    "of shadow models that never saw it): at low false positive rates a model that saw the images "
                    "stands out; the dotted diagonal is chance.")
RELEARN_CAPTION = ("Forget-class recognition while relearning, per attack: each model's mean over the attack seeds "
                   "(shaded: their range, when the figure has few models; the tables give every number), the grey "
                   "band the retrained models' range; the dotted line is half the original's, the dashed one back "
                   "to the original's.")
RELEARN_VARIANTS = {"whole": "the whole model fine-tuned",
                    "decoder-frozen": "the encoder fine-tuned, the decoder frozen",
                    "retain-finetune": "the whole model fine-tuned on retain images only",
                    "quantize-8": "the weights quantized to 8 bits", "quantize-4": "the weights quantized to 4 bits"}
INSTRUMENT_NOT_RUN = "Not run: the evaluator has no classes."
SCORED_VAL = "validation images (choosing knobs)"   # what the results scored: split.scored "val"
SCORED_TEST = "held-out test images"                 # anything else
