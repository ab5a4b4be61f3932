from i2i_unlearn.data.datasets import DATASETS, load_dataset, open_dataset, select_classes
from i2i_unlearn.data.folder import FolderImages
from i2i_unlearn.data.requests import UnlearnSplit, make_unlearn_split, read_id_list
from i2i_unlearn.data.source import ImageBatch, ImageSet, ImageSource
from i2i_unlearn.data.splits import SPLIT_PARTS, Split, load_split, open_split, split_dataset

__all__ = ["DATASETS", "FolderImages", "ImageBatch", "ImageSet", "ImageSource", "load_dataset", "open_dataset",
           "select_classes", "SPLIT_PARTS", "Split", "UnlearnSplit", "load_split", "open_split", "make_unlearn_split",
           "read_id_list", "split_dataset"]
