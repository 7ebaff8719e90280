import numpy as np
import pytest

from chainrule.data import load_csv
from chainrule.data.datasets import CSVData


def write(tmp_path, text, name="data.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_happy_path_header_and_label_by_name(tmp_path):
    p = write(tmp_path, "a,b,label\n1,2,0\n3.5,-4,1\n5,6e1,2\n")
    data = load_csv(p)
    assert isinstance(data, CSVData)
    X, y = data
    assert X.dtype == np.float32 and X.shape == (3, 2)
    np.testing.assert_array_equal(X, [[1, 2], [3.5, -4], [5, 60]])
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2]
    assert data.classes is None
    assert data.feature_names == ["a", "b"] and data.label_name == "label"


def test_string_labels_map_sorted(tmp_path):
    p = write(tmp_path, "x,species\n1,setosa\n2,virginica\n3,setosa\n4,versicolor\n")
    data = load_csv(p, label_column="species")
    assert data.classes == ["setosa", "versicolor", "virginica"]
    assert data.y.tolist() == [0, 2, 0, 1]
    assert data.y.dtype == np.int64


def test_label_by_index_no_header_other_delimiter(tmp_path):
    p = write(tmp_path, "0.5;1.5;cat\n2;3;dog\n\n")
    data = load_csv(p, label_column=-1, delimiter=";")
    np.testing.assert_array_equal(data.X, [[0.5, 1.5], [2, 3]])
    assert data.classes == ["cat", "dog"] and data.y.tolist() == [0, 1]
    assert data.feature_names == ["0", "1"]
    data = load_csv(p, label_column=2, header=False, delimiter=";")
    assert data.y.tolist() == [0, 1]


def test_header_inferred_and_explicit(tmp_path):
    p = write(tmp_path, "1,2,0\n3,4,1\n")
    data = load_csv(p, label_column=-1)
    assert data.X.shape == (2, 2)              # no header inferred
    data = load_csv(p, label_column="0", header=True)   # first row taken as names
    assert data.X.shape == (1, 2) and data.feature_names == ["1", "2"]


def test_feature_columns_dtype_and_label_modes(tmp_path):
    p = write(tmp_path, "id,f1,f2,target\n10,1,2,0.5\n11,3,4,1.5\n")
    data = load_csv(p, label_column="target", feature_columns=["f2", 1], dtype=np.float64)
    assert data.X.dtype == np.float64 and data.X.tolist() == [[2, 1], [4, 3]]
    assert data.y.dtype == np.float64 and data.y.tolist() == [0.5, 1.5]   # regression target
    p = write(tmp_path, "f,label\n1,3\n2,7\n3,3\n", "b.csv")
    data = load_csv(p, label_map="index")
    assert data.y.tolist() == [0, 1, 0] and data.classes == [3, 7]
    data = load_csv(p, label_map={"3": 1, "7": 0})
    assert data.y.tolist() == [1, 0, 1] and data.classes == ["7", "3"]
    data = load_csv(p, label_map=None)
    assert data.y.tolist() == [3, 7, 3]
    data = load_csv(p, label_column=None)
    assert data.y is None and data.X.shape == (3, 2)


def test_bom_and_quotes_and_spaces(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes('\ufeff"x", "label"\n" 1.5",a\n2 , b\n'.encode("utf-8"))
    data = load_csv(p)
    assert data.feature_names == ["x"] and data.X.ravel().tolist() == [1.5, 2.0]
    assert data.classes == ["a", "b"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_csv(tmp_path / "nope.csv")


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(ValueError, match=r"empty\.csv is empty"):
        load_csv(write(tmp_path, "", "empty.csv"))
    with pytest.raises(ValueError, match=r"blank\.csv is empty"):
        load_csv(write(tmp_path, "\n\n  \n", "blank.csv"))
    with pytest.raises(ValueError, match="header row but no data rows"):
        load_csv(write(tmp_path, "a,b,label\n", "h.csv"))


def test_missing_label_column_lists_columns(tmp_path):
    p = write(tmp_path, "a,b,y\n1,2,0\n")
    with pytest.raises(ValueError, match=r"data\.csv has no label column 'label'.*\['a', 'b', 'y'\]"):
        load_csv(p)
    with pytest.raises(ValueError, match=r"label column 5 is out of range.*3 columns"):
        load_csv(p, label_column=5)
    p2 = write(tmp_path, "1,2,0\n3,4,1\n", "nohead.csv")
    with pytest.raises(ValueError, match="no header row; pass an int index"):
        load_csv(p2)


def test_missing_feature_column_lists_columns(tmp_path):
    p = write(tmp_path, "a,b,label\n1,2,0\n")
    with pytest.raises(ValueError, match=r"no feature column 'c'; available columns: \['a', 'b', 'label'\]"):
        load_csv(p, feature_columns=["a", "c"])
    with pytest.raises(ValueError, match="both the label column and a feature column"):
        load_csv(p, feature_columns=["a", "label"])


def test_non_numeric_value_names_line_column_value(tmp_path):
    p = write(tmp_path, "a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(ValueError, match=r"data\.csv, line 3, column 'b': found 'oops', which is not a number"):
        load_csv(p)
    p = write(tmp_path, "a,b,label\n1,2,0\n3,,1\n", "e.csv")
    with pytest.raises(ValueError, match=r"line 3, column 'b': found an empty value"):
        load_csv(p)


def test_non_numeric_label_with_label_map_none(tmp_path):
    p = write(tmp_path, "a,label\n1,0\n2,x\n")
    with pytest.raises(ValueError, match=r"line 3, column 'label': label 'x' is not a number"):
        load_csv(p, label_map=None)
    with pytest.raises(ValueError, match=r"line 3.*'x' is not in label_map"):
        load_csv(p, label_map={"0": 0})
    p = write(tmp_path, "a,label\n1,0\n2,\n", "l.csv")
    with pytest.raises(ValueError, match=r"line 3, column 'label': empty label"):
        load_csv(p)


def test_ragged_rows(tmp_path):
    p = write(tmp_path, "a,b,label\n1,2,0\n\n3,4\n")
    with pytest.raises(ValueError, match=r"data\.csv, line 4: expected 3 fields \(the header has 3\), got 2"):
        load_csv(p)
    p = write(tmp_path, "1,2,0\n3,4,5,6\n", "r.csv")
    with pytest.raises(ValueError, match=r"line 2: expected 3 fields \(the first row has 3\), got 4"):
        load_csv(p, label_column=-1)


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity", "NaN"])
def test_non_finite_features(tmp_path, bad):
    p = write(tmp_path, f"a,b,label\n1,2,0\n3,4,1\n5,{bad},0\n")
    with pytest.raises(ValueError, match=r"line 4, column 'b': value .* is not finite"):
        load_csv(p)


def test_float32_overflow_is_reported(tmp_path):
    p = write(tmp_path, "a,label\n1e39,0\n")
    with pytest.raises(ValueError, match=r"line 2, column 'a'.*overflows float32"):
        load_csv(p)
    assert load_csv(p, dtype=np.float64).X[0, 0] == 1e39


def test_bad_arguments(tmp_path):
    p = write(tmp_path, "a,label\n1,0\n")
    with pytest.raises(ValueError, match="header must be"):
        load_csv(p, header="yes")
    with pytest.raises(ValueError, match="label_map must be"):
        load_csv(p, label_map="sorted")
    with pytest.raises(IsADirectoryError):
        load_csv(tmp_path)
