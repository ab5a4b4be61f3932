from i2i_unlearn.data.datasets import DATASETS, ImageSet, load_dataset
from i2i_unlearn.data.splits import SPLIT_PARTS, Split, UnlearnSplit, load_split, make_unlearn_split, split_dataset

__all__ = ["DATASETS", "ImageSet", "load_dataset", "SPLIT_PARTS", "Split", "UnlearnSplit", "load_split",
           "make_unlearn_split", "split_dataset"]
