"""Text handling (chainrule.data.text): tokenizer, vocabularies with <pad>/<unk>/<bos>/<eos>, the
character vocabulary, and the readers of text files and (text, label) CSV/TSV files with errors
that name the file and the line."""
import numpy as np
import pytest

from chainrule.data.text import (BOS, EOS, PAD, UNK, CharVocabulary, UnknownTokenError,
                                 Vocabulary, read_labeled_text, read_text, tokenize,
                                 write_labeled_text)


# -- tokenizer and vocabulary ---------------------------------------------------------------------

def test_tokenize_words_punctuation_and_apostrophes():
    assert tokenize("Not bad, really! I didn't HATE it.") == \
        ["not", "bad", ",", "really", "!", "i", "didn't", "hate", "it", "."]
    assert tokenize("Mixed Case", lower=False) == ["Mixed", "Case"]
    assert tokenize("   ") == []
    with pytest.raises(TypeError, match="expected a string"):
        tokenize(["a"])


def test_vocabulary_specials_first_then_by_frequency_then_first_seen():
    v = Vocabulary.build([["b", "a", "c"], ["a", "c"], ["d"]])
    assert v.tokens == [PAD, UNK, "a", "c", "b", "d"]
    assert (v.pad_index, v.unk_index) == (0, 1)
    assert v.bos_index is None and v.eos_index is None
    assert len(v) == 6 and "a" in v and "zzz" not in v
    assert v.index("c") == v["c"] == 3 and v.token(3) == "c"


def test_unknown_tokens_map_to_unk_and_padding_fills_the_batch():
    v = Vocabulary.build([["the", "film", "was", "good"]])
    assert v.encode(["the", "film", "was", "great"]).tolist() == [2, 3, 4, v.unk_index]
    ids, lengths = v.encode_batch([["the", "film"], ["good"], ["the", "unknown", "was", "good"]])
    assert ids.dtype == np.int64 and ids.shape == (3, 4)
    assert lengths.tolist() == [2, 1, 4]
    assert ids[0].tolist() == [2, 3, 0, 0] and ids[1].tolist() == [5, 0, 0, 0]
    assert ids[2].tolist() == [2, 1, 4, 5]
    # truncation keeps the start; an empty text becomes a single <unk> (an RNN needs one step)
    ids, lengths = v.encode_batch([["the", "film", "was"], []], max_len=2)
    assert ids.tolist() == [[2, 3], [1, 0]] and lengths.tolist() == [2, 1]


def test_min_freq_max_size_and_decode():
    v = Vocabulary.build([["a", "a", "b", "c", "c", "c"]], min_freq=2)
    assert v.tokens == [PAD, UNK, "c", "a"]
    v = Vocabulary.build([["a", "a", "b", "c", "c", "c"]], max_size=1)
    assert v.tokens == [PAD, UNK, "c"]
    with pytest.raises(ValueError, match="min_freq"):
        Vocabulary.build([["a"]], min_freq=0)
    with pytest.raises(TypeError, match="tokenize it first"):
        Vocabulary.build(["a string, not tokens"])


def test_seq2seq_specials_bos_eos_and_decode_stops_at_eos():
    v = Vocabulary.build([list("abc")], specials=(PAD, UNK, BOS, EOS))
    assert (v.pad_index, v.unk_index, v.bos_index, v.eos_index) == (0, 1, 2, 3)
    ids = v.encode(list("cab"), add_bos=True, add_eos=True)
    assert ids.tolist() == [2, 6, 4, 5, 3]
    assert v.decode(ids) == list("cab")                      # specials dropped, stops at <eos>
    assert v.decode([4, 3, 5]) == ["a"]
    assert v.decode([4, 3, 5], stop_at_eos=False, strip_specials=False) == ["a", EOS, "b"]
    with pytest.raises(ValueError, match="has no <bos>"):
        Vocabulary.build([["a"]]).encode(["a"], add_bos=True)
    with pytest.raises(IndexError, match="out of range"):
        v.token(99)


def test_vocabulary_without_unk_raises_naming_the_token():
    v = Vocabulary(["x", "y"], specials=(PAD,), unk=None)
    assert v.encode(["y", "x"]).tolist() == [2, 1]
    with pytest.raises(UnknownTokenError, match="unknown token 'z'"):
        v.encode(["z"])
    with pytest.raises(ValueError, match="unk token '<unk>' is not among"):
        Vocabulary(["x"], specials=(PAD,))


def test_state_dict_round_trip():
    v = Vocabulary.build([["a", "b"]], specials=(PAD, UNK, BOS, EOS))
    c = CharVocabulary.build("hello\nworld")
    for vocab in (v, c):
        back = Vocabulary.from_state_dict(vocab.state_dict())
        assert back == vocab and type(back) is type(vocab)
        assert back.tokens == vocab.tokens


# -- characters -----------------------------------------------------------------------------------

def test_char_vocabulary_is_sorted_and_names_unknown_characters():
    v = CharVocabulary.build("hello world")
    assert v.tokens == sorted(set("hello world"))
    assert v.decode_text(v.encode("hold")) == "hold"
    assert v.unk is None and v.pad is None
    with pytest.raises(UnknownTokenError) as e:
        v.encode("hex", what="prime text")
    msg = str(e.value)
    assert "'x' (U+0078)" in msg and "position 2 of the prime text" in msg and "8 characters" in msg
    with pytest.raises(ValueError, match="empty"):
        CharVocabulary.build("")
    with pytest.raises(ValueError, match="single characters"):
        CharVocabulary(["ab"])
    # with <unk>, unknown characters are mapped instead
    w = CharVocabulary.build("abc", specials=(PAD, UNK), unk=UNK, pad=PAD)
    assert w.encode("axb").tolist() == [2, 1, 3]


# -- files ----------------------------------------------------------------------------------------

def test_read_text_and_its_errors(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes("\ufeffhello\nworld\n".encode("utf-8"))
    assert read_text(p) == "hello\nworld\n"                    # byte-order mark dropped
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.txt: the file is empty"):
        read_text(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\t\n")
    with pytest.raises(ValueError, match="only whitespace"):
        read_text(blank)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        read_text(tmp_path)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nstill fine\nbroken \xff here\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 3: cannot decode byte 0xff"):
        read_text(bad)


def test_read_tsv_with_header_and_string_labels(tmp_path):
    p = tmp_path / "reviews.tsv"
    p.write_text("text\tlabel\ngreat movie\tpos\n\nawful, really\tneg\nnot bad\tpos\n")
    texts, labels, classes = read_labeled_text(p)
    assert texts == ["great movie", "awful, really", "not bad"]
    assert classes == ["neg", "pos"] and labels.tolist() == [1, 0, 1] and labels.dtype == np.int64
    # the named fields of the result
    r = read_labeled_text(p)
    assert r.texts == texts and r.classes == classes


def test_read_csv_quoted_commas_integer_labels_and_columns(tmp_path):
    p = tmp_path / "data.csv"
    p.write_text('id,sentiment,review\n1,10,"good, not great"\n2,2,bad\n3,-1,"so, so"\n')
    texts, labels, classes = read_labeled_text(p)
    assert texts == ["good, not great", "bad", "so, so"]
    assert classes == ["-1", "2", "10"]                         # numeric order
    assert labels.tolist() == [2, 1, 0]
    texts, labels, classes = read_labeled_text(p, text_column="review", label_column=0)
    assert classes == ["1", "2", "3"]
    with pytest.raises(ValueError, match="no column named 'nope'"):
        read_labeled_text(p, text_column="nope")


def test_no_header_and_given_classes(tmp_path):
    p = tmp_path / "plain.txt"
    p.write_text("one\ta\ntwo\tb\n")
    texts, labels, classes = read_labeled_text(p, classes=["b", "a"])
    assert texts == ["one", "two"] and labels.tolist() == [1, 0] and classes == ["b", "a"]
    with pytest.raises(ValueError, match=r"plain\.txt, line 2: label 'b' is not one of the classes"):
        read_labeled_text(p, classes=["a"])
    with pytest.raises(ValueError, match="given by name, but the file has no header"):
        read_labeled_text(p, text_column="text")


@pytest.mark.parametrize("content, line, what", [
    ("text\tlabel\ngood\tpos\nno tab on this line\nbad\tneg\n", 3, "expected 2 fields"),
    ("good\tpos\nbad\t\n", 2, "empty label"),
    ("good\tpos\n\t neg\n", 2, "empty text"),
    ("good\tpos\nbad\tneg\textra\tfields\n", 2, "expected 2 fields"),
])
def test_bad_rows_name_the_file_and_line(tmp_path, content, line, what):
    p = tmp_path / "train.tsv"
    p.write_text(content)
    with pytest.raises(ValueError) as e:
        read_labeled_text(p)
    assert f"train.tsv, line {line}" in str(e.value) and what in str(e.value)


def test_empty_and_header_only_files(tmp_path):
    p = tmp_path / "e.tsv"
    p.write_text("\n\n")
    with pytest.raises(ValueError, match=r"e\.tsv: no rows"):
        read_labeled_text(p)
    p.write_text("text\tlabel\n")
    with pytest.raises(ValueError, match="only a header row"):
        read_labeled_text(p)
    p.write_text("just text\nmore text\n")
    with pytest.raises(ValueError, match=r"line 1: expected at least 2 fields"):
        read_labeled_text(p)


def test_write_then_read_round_trip_with_awkward_text(tmp_path):
    texts = ['he said "no", then left', "tab\tinside", "plain"]
    labels = ["neg", "neg", "pos"]
    p = write_labeled_text(tmp_path / "w.tsv", texts, labels)
    back, y, classes = read_labeled_text(p)
    assert back == texts and [classes[i] for i in y] == labels
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        write_labeled_text(tmp_path / "x.tsv", ["a", "b"], ["c"])
