from i2i_unlearn.data.datasets import DATASETS, ImageSet, load_dataset
from i2i_unlearn.data.splits import UnlearnSplit, load_split, make_unlearn_split, train_test_split

__all__ = ["DATASETS", "ImageSet", "load_dataset", "UnlearnSplit", "load_split", "make_unlearn_split",
           "train_test_split"]
