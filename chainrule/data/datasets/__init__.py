"""Ready datasets, one file a source. Each returns NumPy arrays (features float32, labels int64).

The optional dependencies (scikit-learn, mnist1d) are imported only when a loader is called.
"""
from chainrule.data.datasets.csv import CSVData, load_csv
from chainrule.data.datasets.digits import digits, digits_split
from chainrule.data.datasets.mnist1d import mnist1d

__all__ = ["digits", "digits_split", "mnist1d", "load_csv", "CSVData"]
