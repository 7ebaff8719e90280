"""Data: datasets, splits and the minibatch loader.

>>> from chainrule.data import ArrayDataset, DataLoader, train_val_split
>>> from chainrule.data.datasets import digits
>>> X, y = digits()
>>> X_tr, X_val, y_tr, y_val = train_val_split(X, y, val_fraction=0.2, stratify=y)
>>> loader = DataLoader(ArrayDataset(X_tr, y_tr), batch_size=64, shuffle=True, seed=0)
"""
from chainrule.data import datasets
from chainrule.data.dataset import (ArrayDataset, Dataset, Subset, TensorDataset, collate,
                                    random_split, train_val_split)
from chainrule.data.datasets import load_csv
from chainrule.data.loader import DataLoader

__all__ = ["Dataset", "TensorDataset", "ArrayDataset", "Subset", "DataLoader", "collate",
           "random_split", "train_val_split", "load_csv", "datasets"]
