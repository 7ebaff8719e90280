"""Load a numeric CSV table as features X (N, D) and labels y (N,), with errors that point at the cell.

Uses the standard-library ``csv`` module, so there is no pandas dependency.
"""
import csv
import numbers
import os

import numpy as np


class CSVData:
    """What ``load_csv`` returns.

    Attributes:
        X: (N, D) features, ``dtype`` as requested (float32 by default).
        y: (N,) labels: int64 class indices, or floats for non-integer numeric targets;
            None when ``label_column=None``.
        classes: ``classes[k]`` is the original label of class k when labels were mapped, else None.
        feature_names: the D feature column names (``'0'``, ``'1'``, ... without a header).
        label_name: the label column's name, or None.
        path: the file read.

    Unpacks as ``X, y = load_csv(path)``; the rest stays reachable as attributes.
    """

    def __init__(self, X, y, classes, feature_names, label_name, path):
        self.X, self.y, self.classes = X, y, classes
        self.feature_names, self.label_name, self.path = feature_names, label_name, path

    def __iter__(self):
        return iter((self.X, self.y))

    def __repr__(self):
        ncls = f", classes={self.classes}" if self.classes is not None else ""
        return (f"CSVData({self.path!r}: X {self.X.shape} {self.X.dtype}, label "
                f"{self.label_name!r}{ncls})")


def _is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def _read_rows(path, delimiter):
    """All non-blank rows with the file line each starts on."""
    rows, lines = [], []
    try:
        # utf-8-sig drops the byte-order mark spreadsheet programs put in front of the first name.
        with open(path, newline="", encoding="utf-8-sig") as f:
            # skipinitialspace: hand-written files put a space after each comma, even before quotes.
            reader = csv.reader(f, delimiter=delimiter, skipinitialspace=True)
            start = 1
            for row in reader:
                if row and not (len(row) == 1 and not row[0].strip()):
                    rows.append(row)
                    lines.append(start)
                start = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise ValueError(f"load_csv: {path} is not UTF-8 text ({e})") from None
    except csv.Error as e:
        raise ValueError(f"load_csv: {path}, line {reader.line_num}: {e}") from None
    return rows, lines


def _infer_header(rows):
    """The first row is a header if some column is text there but numeric in the next row."""
    first = rows[0]
    if len(rows) == 1:
        return all(not _is_number(s) for s in first)
    second = rows[1]
    return any(not _is_number(first[j]) and _is_number(second[j])
               for j in range(min(len(first), len(second))))


def _resolve(column, names, path, has_header, what):
    """The index of ``column`` (a name or an int, negative counting from the end)."""
    n = len(names)
    if isinstance(column, numbers.Integral) and not isinstance(column, bool):
        if not -n <= column < n:
            raise ValueError(f"load_csv: {what} {column} is out of range: {path} has {n} columns "
                             f"{names}")
        return int(column) % n
    if isinstance(column, str):
        hits = [j for j, name in enumerate(names) if name == column]
        if len(hits) > 1:
            raise ValueError(f"load_csv: {what} {column!r} is ambiguous: {path} has it at columns "
                             f"{hits}; pass an int index")
        if hits:
            return hits[0]
        hint = "" if has_header else " (the file has no header row; pass an int index)"
        raise ValueError(f"load_csv: {path} has no {what} {column!r}{hint}; available columns: "
                         f"{names}")
    raise TypeError(f"load_csv: {what} must be a column name or an int index, "
                    f"got {type(column).__name__}")


def _parse_features(cells, rows_lines, cols, names, path):
    """(N, D) float64 from a list of string rows; the first bad cell is named on failure."""
    try:
        # One vectorised conversion for the common all-good case.
        return np.array(cells, dtype=str).astype(np.float64).reshape(len(cells), len(cols))
    except ValueError:
        pass
    # Slow path, only on failure: find the cell, or convert with Python's own float() if NumPy's
    # parser was the stricter one.
    out = np.empty((len(cells), len(cols)))
    for r, row in enumerate(cells):
        for c, s in enumerate(row):
            try:
                out[r, c] = float(s)
            except ValueError:
                what = "an empty value" if not s.strip() else f"{s!r}, which is not a number"
                raise ValueError(f"load_csv: {path}, line {rows_lines[r]}, column "
                                 f"{names[cols[c]]!r}: found {what}") from None
    return out


def _parse_labels(raw, lines, path, label_name, label_map, dtype):
    """(y, classes) from the label strings."""
    for s, ln in zip(raw, lines):
        if not s:
            raise ValueError(f"load_csv: {path}, line {ln}, column {label_name!r}: empty label")

    if isinstance(label_map, dict):
        y = np.empty(len(raw), dtype=np.int64)
        for i, (s, ln) in enumerate(zip(raw, lines)):
            if s not in label_map:
                raise ValueError(f"load_csv: {path}, line {ln}, column {label_name!r}: label {s!r} "
                                 f"is not in label_map (keys {sorted(label_map)})")
            y[i] = label_map[s]
        classes = [k for k, _ in sorted(label_map.items(), key=lambda kv: kv[1])]
        return y, classes

    if label_map not in ("auto", "index", None):
        raise ValueError(f"load_csv: label_map must be 'auto', 'index', None or a dict, "
                         f"got {label_map!r}")
    numeric = [_is_number(s) for s in raw]
    if all(numeric):
        values = np.array([float(s) for s in raw])
        if not np.isfinite(values).all():
            i = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ValueError(f"load_csv: {path}, line {lines[i]}, column {label_name!r}: "
                             f"non-finite label {raw[i]!r}")
        integral = bool(np.all(values == np.round(values)))
        if label_map == "index":
            classes, y = np.unique(values, return_inverse=True)
            classes = [int(c) if integral else float(c) for c in classes]
            return y.reshape(-1).astype(np.int64), classes
        # Integer labels are class indices; anything else is a regression target.
        return (values.astype(np.int64) if integral else values.astype(dtype)), None
    if label_map is None:
        i = numeric.index(False)
        raise ValueError(f"load_csv: {path}, line {lines[i]}, column {label_name!r}: label "
                         f"{raw[i]!r} is not a number (label_map=None keeps labels as numbers; "
                         f"use label_map='auto' to map text labels to class indices)")
    # Text labels: class k is the k-th label in sorted order, so the mapping does not depend on
    # the order of the rows.
    classes, y = np.unique(np.array(raw, dtype=object), return_inverse=True)
    return y.reshape(-1).astype(np.int64), [str(c) for c in classes]


def load_csv(path, label_column="label", feature_columns=None, header="infer", delimiter=",",
             dtype=np.float32, label_map="auto"):
    """Read a CSV file of numeric features and one label column.

    Args:
        path: the file.
        label_column: the label column's name, or its int index (-1: the last column), or None
            for a file of features only (then ``y`` is None).
        feature_columns: names or int indices of the feature columns; default all but the label.
        header: True if the first row holds column names, False if not (columns are then named
            ``'0'``, ``'1'``, ...), ``'infer'`` to decide from the first two rows.
        delimiter: the field separator.
        dtype: the features' dtype (float32 by default).
        label_map: ``'auto'``: integer labels stay as they are, other numbers stay float targets,
            text labels become 0..K-1 in sorted order; ``'index'``: always map the sorted distinct
            labels to 0..K-1; None: labels must be numbers; or a dict {label text: index}.

    Returns:
        ``CSVData`` with X (N, D), y (N,), classes, feature_names, label_name; ``X, y = load_csv(p)``.

    Raises ValueError naming the file, line and column for: an empty file, a header with no data,
    ragged rows, a missing column, a non-numeric or empty feature, NaN/inf in the features.

    >>> X, y = load_csv("iris.csv", label_column="species")
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_csv: no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load_csv: {path} is a directory, expected a CSV file")

    rows, lines = _read_rows(path, delimiter)
    if not rows:
        raise ValueError(f"load_csv: {path} is empty")
    if header == "infer":
        has_header = _infer_header(rows)
    elif isinstance(header, bool):
        has_header = header
    else:
        raise ValueError(f"load_csv: header must be True, False or 'infer', got {header!r}")

    if has_header:
        names = [s.strip() for s in rows[0]]
        data, data_lines = rows[1:], lines[1:]
        if not data:
            raise ValueError(f"load_csv: {path} has a header row but no data rows")
    else:
        names = [str(j) for j in range(len(rows[0]))]
        data, data_lines = rows, lines

    width = len(names)
    for row, ln in zip(data, data_lines):
        if len(row) != width:
            basis = "the header has" if has_header else "the first row has"
            raise ValueError(f"load_csv: {path}, line {ln}: expected {width} fields ({basis} "
                             f"{width}), got {len(row)}")

    label_idx = (None if label_column is None
                 else _resolve(label_column, names, path, has_header, "label column"))
    if feature_columns is None:
        cols = [j for j in range(width) if j != label_idx]
    else:
        if isinstance(feature_columns, (str, numbers.Integral)):
            feature_columns = [feature_columns]
        cols = [_resolve(c, names, path, has_header, "feature column") for c in feature_columns]
        if label_idx is not None and label_idx in cols:
            raise ValueError(f"load_csv: column {names[label_idx]!r} is both the label column and "
                             f"a feature column in {path}")
    if not cols:
        raise ValueError(f"load_csv: {path} has no feature columns (columns: {names})")

    cells = [[row[j] for j in cols] for row in data]
    values = _parse_features(cells, data_lines, cols, names, path)
    with np.errstate(over="ignore", invalid="ignore"):   # overflow is reported below, by cell
        X = values.astype(dtype)
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        if bad.any():
            r, c = (int(i[0]) for i in np.nonzero(bad))
            raw = cells[r][c].strip()
            why = ("NaN/inf in the features; fill or drop such rows first"
                   if not np.isfinite(values[r, c]) else f"it overflows {X.dtype}")
            raise ValueError(f"load_csv: {path}, line {data_lines[r]}, column {names[cols[c]]!r}: "
                             f"value {raw!r} is not finite ({why})")

    y, classes, label_name = None, None, None
    if label_idx is not None:
        label_name = names[label_idx]
        raw = [row[label_idx].strip() for row in data]
        y, classes = _parse_labels(raw, data_lines, path, label_name, label_map, dtype)
    return CSVData(X, y, classes, [names[j] for j in cols], label_name, path)
