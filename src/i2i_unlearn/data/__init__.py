from i2i_unlearn.data.datasets import DATASETS, ImageSet, load_dataset, select_classes
from i2i_unlearn.data.requests import UnlearnSplit, make_unlearn_split, read_id_list
from i2i_unlearn.data.splits import SPLIT_PARTS, Split, load_split, split_dataset

__all__ = ["DATASETS", "ImageSet", "load_dataset", "select_classes", "SPLIT_PARTS", "Split", "UnlearnSplit", "load_split",
           "make_unlearn_split", "read_id_list", "split_dataset"]
