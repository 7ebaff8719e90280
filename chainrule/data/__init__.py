"""Data: datasets, splits and the minibatch loader.

>>> from chainrule.data import ArrayDataset, DataLoader, train_val_split
>>> from chainrule.data.datasets import digits
>>> X, y = digits()
>>> X_tr, X_val, y_tr, y_val = train_val_split(X, y, val_fraction=0.2, stratify=y)
>>> loader = DataLoader(ArrayDataset(X_tr, y_tr), batch_size=64, shuffle=True, seed=0)

Live augmentation (seeded by the loader, new draws each epoch; statistics from the training set):

>>> X_tr, y_tr, X_te, y_te = datasets.digits_split(images=True)
>>> aug = Compose([MeanSubtraction.fit(X_tr), RandomShift(1)])
>>> loader = DataLoader(ArrayDataset(X_tr, y_tr), batch_size=64, shuffle=True, seed=0, transform=aug)
"""
from chainrule.data import datasets, transforms
from chainrule.data.dataset import (ArrayDataset, Dataset, Subset, TensorDataset, collate,
                                    random_split, train_val_split)
from chainrule.data.datasets import ImageFolder, load_csv
from chainrule.data.loader import DataLoader
from chainrule.data.transforms import (Compose, MeanSubtraction, Normalize, RandomApply,
                                       RandomCrop, RandomHorizontalFlip, RandomShift, Transform)

__all__ = ["Dataset", "TensorDataset", "ArrayDataset", "Subset", "DataLoader", "collate",
           "random_split", "train_val_split", "load_csv", "ImageFolder", "datasets", "transforms",
           "Transform", "Compose", "MeanSubtraction", "Normalize", "RandomCrop", "RandomShift",
           "RandomHorizontalFlip", "RandomApply"]
