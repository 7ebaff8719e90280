"""Text for sequence models: a tokenizer, word and character vocabularies, and readers for a plain
text file and for a CSV/TSV file of (text, label) rows.

>>> texts, labels, classes = read_labeled_text("reviews.tsv")      # errors name the file and line
>>> vocab = Vocabulary.build(map(tokenize, texts), min_freq=2)      # <pad> = 0, <unk> = 1, then words
>>> ids, lengths = vocab.encode_batch(map(tokenize, texts))        # (N, T_max) int64 padded with 0, (N,)
>>> chars = CharVocabulary.build(read_text("input.txt"))          # every character of the text
>>> chars.encode("hello")                                          # array([...]) int64
"""
import collections
import csv
import os
import re

import numpy as np

__all__ = ["PAD", "UNK", "BOS", "EOS", "tokenize", "Vocabulary", "CharVocabulary",
           "UnknownTokenError", "read_text", "read_labeled_text", "write_labeled_text",
           "LabeledText"]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"

_TOKEN = re.compile(r"[\w']+|[^\w\s]")


def tokenize(text, lower=True):
    """Split text into words and punctuation marks (apostrophes stay inside words).

    >>> tokenize("Not bad, really -- I didn't hate it!")
    ['not', 'bad', ',', 'really', '-', '-', 'i', "didn't", 'hate', 'it', '!']
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize: expected a string, got {type(text).__name__}")
    return _TOKEN.findall(text.lower() if lower else text)


class UnknownTokenError(ValueError):
    """A token (or character) that a vocabulary without <unk> does not know."""


def _show(token):
    """A token as it reads in an error message: repr, plus the code point for a single character."""
    if isinstance(token, str) and len(token) == 1:
        return f"{token!r} (U+{ord(token):04X})"
    return repr(token)


class Vocabulary:
    """A two-way map between tokens and integer ids.

    The special tokens come first, in the order given (by default ``<pad>`` = 0 and ``<unk>`` = 1;
    seq2seq vocabularies add ``<bos>`` and ``<eos>``), then the other tokens. Encoding a token the
    vocabulary does not know gives the id of ``unk`` when the vocabulary has it, and raises
    :class:`UnknownTokenError` otherwise.

    >>> v = Vocabulary.build([["a", "b", "a"], ["c"]])
    >>> v.tokens
    ['<pad>', '<unk>', 'a', 'b', 'c']
    >>> v.encode(["a", "zzz"])
    array([2, 1])
    """

    def __init__(self, tokens=(), specials=(PAD, UNK), unk=UNK, pad=PAD):
        self._itos, self._stoi = [], {}
        for t in list(specials) + list(tokens):
            self._add(t)
        self.specials = tuple(specials)
        for name, tok in (("unk", unk), ("pad", pad)):
            if tok is not None and tok not in self._stoi:
                raise ValueError(f"{type(self).__name__}: the {name} token {tok!r} is not among the "
                                 f"tokens; add it to specials or pass {name}=None")
        self.unk, self.pad = unk, pad

    def _add(self, token):
        if not isinstance(token, str):
            raise TypeError(f"{type(self).__name__}: tokens must be strings, got {token!r}")
        if token not in self._stoi:
            self._stoi[token] = len(self._itos)
            self._itos.append(token)

    @classmethod
    def build(cls, sequences, min_freq=1, max_size=None, specials=(PAD, UNK), unk=UNK, pad=PAD):
        """A vocabulary of the tokens in ``sequences`` (an iterable of token lists) seen at least
        ``min_freq`` times; the most frequent first (ties: first seen first, so the result does not
        depend on hashing), at most ``max_size`` tokens besides the specials."""
        if min_freq < 1:
            raise ValueError(f"Vocabulary.build: min_freq must be >= 1, got {min_freq}")
        counts = collections.Counter()
        first = {}
        for seq in sequences:
            if isinstance(seq, str):
                raise TypeError("Vocabulary.build: expected token lists, got a string; tokenize "
                                "it first (or use CharVocabulary for characters)")
            for t in seq:
                counts[t] += 1
                first.setdefault(t, len(first))
        words = [t for t in counts if counts[t] >= min_freq and t not in specials]
        words.sort(key=lambda t: (-counts[t], first[t]))
        if max_size is not None:
            words = words[:int(max_size)]
        vocab = cls(words, specials=specials, unk=unk, pad=pad)
        vocab.counts = {t: counts[t] for t in words}
        return vocab

    # -- lookups -----------------------------------------------------------------------------------
    def __len__(self):
        return len(self._itos)

    def __contains__(self, token):
        return token in self._stoi

    def __iter__(self):
        return iter(self._itos)

    def __eq__(self, other):
        return (type(other) is type(self) and other._itos == self._itos
                and other.unk == self.unk and other.pad == self.pad)

    def __repr__(self):
        head = ", ".join(repr(t) for t in self._itos[:8])
        more = ", ..." if len(self) > 8 else ""
        return f"{type(self).__name__}({len(self)} tokens: {head}{more})"

    @property
    def tokens(self):
        """All tokens, in id order (a copy)."""
        return list(self._itos)

    def index(self, token):
        """The id of ``token`` (``unk``'s id for an unknown one, if the vocabulary has ``unk``)."""
        i = self._stoi.get(token)
        if i is None:
            if self.unk is None:
                raise UnknownTokenError(f"{type(self).__name__}: unknown token {_show(token)}")
            return self._stoi[self.unk]
        return i

    __getitem__ = index

    def token(self, i):
        i = int(i)
        if not 0 <= i < len(self._itos):
            raise IndexError(f"{type(self).__name__}: id {i} is out of range [0, {len(self)})")
        return self._itos[i]

    def _special_index(self, tok):
        return None if tok is None or tok not in self._stoi else self._stoi[tok]

    @property
    def pad_index(self):
        return self._special_index(self.pad)

    @property
    def unk_index(self):
        return self._special_index(self.unk)

    @property
    def bos_index(self):
        return self._special_index(BOS)

    @property
    def eos_index(self):
        return self._special_index(EOS)

    # -- encode / decode ---------------------------------------------------------------------------
    def encode(self, tokens, add_bos=False, add_eos=False):
        """Token list -> int64 ids (N,), optionally framed by <bos> ... <eos>."""
        ids = [self.index(t) for t in tokens]
        if add_bos:
            ids.insert(0, self._need(BOS))
        if add_eos:
            ids.append(self._need(EOS))
        return np.asarray(ids, dtype=np.int64)

    def _need(self, tok):
        if tok not in self._stoi:
            raise ValueError(f"{type(self).__name__}: has no {tok} token; build it with "
                             f"specials=(PAD, UNK, BOS, EOS)")
        return self._stoi[tok]

    def decode(self, ids, strip_specials=True, stop_at_eos=True):
        """Ids -> tokens. Stops at the first <eos> and drops the special tokens, unless told not to."""
        out = []
        eos = self.eos_index
        specials = set(self.specials)
        for i in np.asarray(ids).reshape(-1):
            if stop_at_eos and eos is not None and int(i) == eos:
                break
            t = self.token(i)
            if strip_specials and t in specials:
                continue
            out.append(t)
        return out

    def encode_batch(self, sequences, max_len=None, add_bos=False, add_eos=False):
        """Token lists -> (ids (N, T) int64 padded with <pad> at the end, lengths (N,) int64).

        ``max_len`` truncates longer sequences (keeping their start). An empty sequence becomes one
        <unk> (a recurrent layer needs at least one step), or raises if there is no <unk>."""
        if self.pad is None:
            raise ValueError(f"{type(self).__name__}: encode_batch needs a padding token")
        rows = []
        for n, seq in enumerate(sequences):
            ids = self.encode(seq, add_bos=add_bos, add_eos=add_eos)
            if max_len is not None:
                ids = ids[:int(max_len)]
            if len(ids) == 0:
                if self.unk is None:
                    raise ValueError(f"{type(self).__name__}.encode_batch: sequence {n} is empty")
                ids = np.asarray([self.unk_index], dtype=np.int64)
            rows.append(ids)
        if not rows:
            raise ValueError(f"{type(self).__name__}.encode_batch: no sequences")
        lengths = np.asarray([len(r) for r in rows], dtype=np.int64)
        out = np.full((len(rows), int(lengths.max())), self.pad_index, dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out, lengths

    # -- saving ------------------------------------------------------------------------------------
    def state_dict(self):
        """Plain data (lists and strings) for ``chainrule.save``; :meth:`from_state_dict` inverts it."""
        return {"type": type(self).__name__, "tokens": list(self._itos),
                "specials": list(self.specials), "unk": self.unk, "pad": self.pad}

    @classmethod
    def from_state_dict(cls, state):
        kind = state.get("type", cls.__name__)
        klass = {"Vocabulary": Vocabulary, "CharVocabulary": CharVocabulary}.get(kind)
        if klass is None:
            raise ValueError(f"Vocabulary.from_state_dict: unknown vocabulary type {kind!r}")
        specials = list(state.get("specials", []))
        tokens = list(state["tokens"])
        if tokens[:len(specials)] != specials:
            raise ValueError("Vocabulary.from_state_dict: the special tokens do not come first")
        v = klass.__new__(klass)
        Vocabulary.__init__(v, tokens[len(specials):], specials=specials, unk=state.get("unk"),
                            pad=state.get("pad"))
        return v


class CharVocabulary(Vocabulary):
    """A vocabulary of single characters, for character-level models.

    By default it has no special tokens: every character of the training text has an id and an
    unknown character is an error that names it (``specials=(PAD, UNK)`` maps it to <unk> instead).
    Characters are ordered by code point, so the same text always gives the same ids.

    >>> v = CharVocabulary.build("hello")
    >>> v.tokens, v.encode("hole"), v.decode_text([2, 3])
    (['e', 'h', 'l', 'o'], array([1, 3, 2, 0]), 'lo')
    """

    def __init__(self, chars=(), specials=(), unk=None, pad=None):
        super().__init__(chars, specials=specials, unk=unk, pad=pad)

    @classmethod
    def build(cls, text, specials=(), unk=None, pad=None):
        if not isinstance(text, str):
            text = "".join(text)
        if not text:
            raise ValueError("CharVocabulary.build: the text is empty")
        return cls(sorted(set(text)), specials=specials, unk=unk, pad=pad)

    def _add(self, token):
        # special tokens such as <pad> are longer than one character; everything else is one
        if isinstance(token, str) and len(token) != 1 and not (token[:1] == "<" and token[-1:] == ">"):
            raise ValueError(f"CharVocabulary: expected single characters, got {token!r}")
        super()._add(token)

    def encode(self, text, add_bos=False, add_eos=False, what="text"):
        """A string -> int64 ids. An unknown character raises UnknownTokenError naming it and its
        position (``what`` names the string in the message, e.g. 'prime text')."""
        if self.unk is None:
            for pos, ch in enumerate(text):
                if ch not in self._stoi:
                    known = "".join(t for t in self._itos if len(t) == 1)
                    raise UnknownTokenError(
                        f"unknown character {_show(ch)} at position {pos} of the {what}; the "
                        f"vocabulary has {len(known)} characters: {known!r}")
        return super().encode(list(text), add_bos=add_bos, add_eos=add_eos)

    def decode_text(self, ids, strip_specials=True):
        """Ids -> the string they spell."""
        return "".join(self.decode(ids, strip_specials=strip_specials))


# -- files ------------------------------------------------------------------------------------------

def _check_file(path, who):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{who}: no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{who}: {path} is a directory, expected a text file")
    return path


def _read(path, encoding, who):
    path = _check_file(path, who)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: cannot decode byte {raw[e.start]:#04x} as "
                         f"{encoding} (is it a text file? pass encoding='latin-1' for legacy "
                         f"files)") from None
    if text.startswith("\ufeff"):           # a byte-order mark is not part of the text
        text = text[1:]
    return path, text


def read_text(path, encoding="utf-8"):
    """The whole text of a file (a byte-order mark dropped). An empty or whitespace-only file, a
    missing file, a directory or bytes that do not decode raise errors that name the file."""
    path, text = _read(path, encoding, "read_text")
    if not text.strip():
        raise ValueError(f"{path}: the file is empty" if not text else
                         f"{path}: the file holds only whitespace, no text")
    return text


class LabeledText(tuple):
    """(texts, labels, classes): texts a list of str, labels int64 (N,) indices into classes."""

    def __new__(cls, texts, labels, classes):
        return super().__new__(cls, (texts, labels, classes))

    texts = property(lambda self: self[0])
    labels = property(lambda self: self[1])
    classes = property(lambda self: self[2])


_TEXT_NAMES = ("text", "sentence", "review", "document", "comment", "tweet")
_LABEL_NAMES = ("label", "labels", "sentiment", "class", "target", "y", "category")


def _column(spec, header, default, path, what):
    """A column given by name (needs a header) or by index."""
    if spec is None:
        return default
    if isinstance(spec, int):
        return spec
    if header is None:
        raise ValueError(f"{path}: {what} column {spec!r} given by name, but the file has no header "
                         f"row; give its index instead")
    names = [h.strip().lower() for h in header]
    if spec.lower() not in names:
        raise ValueError(f"{path}: no column named {spec!r} in the header {header}")
    return names.index(spec.lower())


def read_labeled_text(path, delimiter=None, text_column=None, label_column=None, header="auto",
                      classes=None, encoding="utf-8"):
    """Read a CSV or TSV file of (text, label) rows; returns ``LabeledText(texts, labels, classes)``.

    ``delimiter``: ',' or '\\t'; by default a tab for ``.tsv`` / ``.tab`` files, a comma for
    ``.csv``, else a tab if the first line has one. Fields may be quoted ("a, b", CSV style).
    ``header``: True, False or 'auto' (the first row is a header when one of its fields is a
    usual column name such as text / sentence / review / label / sentiment / class).
    Columns: by name (with a header) or index; default the header's text and label columns, else
    the first column is the text and the last the label. Blank lines are skipped.
    ``classes``: the label values in class-index order; by default the sorted distinct labels
    (numerically when all are integers). Labels outside a given ``classes`` are an error.

    Every problem raises ValueError naming the file and the line: a row with too few fields, an
    empty text or label, an unknown label, a file with no rows.

    >>> texts, y, classes = read_labeled_text("train.tsv")   # classes e.g. ['neg', 'pos'], y in {0, 1}
    """
    path, content = _read(path, encoding, "read_labeled_text")
    if delimiter is None:
        ext = os.path.splitext(path)[1].lower()
        if ext in (".tsv", ".tab"):
            delimiter = "\t"
        elif ext == ".csv":
            delimiter = ","
        else:
            first = content.split("\n", 1)[0]
            delimiter = "\t" if "\t" in first else ","
    sep = "tab" if delimiter == "\t" else repr(delimiter)
    reader = csv.reader(content.splitlines(keepends=True), delimiter=delimiter)
    rows = []
    try:
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            rows.append((reader.line_num, fields))
    except csv.Error as e:
        raise ValueError(f"{path}, line {reader.line_num}: {e}") from None
    if not rows:
        raise ValueError(f"{path}: no rows; expected lines of text and label separated by {sep}")
    head = None
    first_names = [f.strip().lower() for f in rows[0][1]]
    known = _TEXT_NAMES + _LABEL_NAMES
    if header is True or (header == "auto" and any(n in known for n in first_names)):
        head = rows[0][1]
        rows = rows[1:]
        if not rows:
            raise ValueError(f"{path}: only a header row, no data")
    elif header not in (False, "auto"):
        raise ValueError(f"read_labeled_text: header must be True, False or 'auto', got {header!r}")
    width = len(rows[0][1]) if head is None else len(head)
    dt = dl = None
    if head is not None:
        names = [h.strip().lower() for h in head]
        dt = next((names.index(n) for n in _TEXT_NAMES if n in names), None)
        dl = next((names.index(n) for n in _LABEL_NAMES if n in names), None)
    ti = _column(text_column, head, 0 if dt is None else dt, path, "text")
    li = _column(label_column, head, (width - 1) if dl is None else dl, path, "label")
    need = max(ti, li) + 1 if ti >= 0 and li >= 0 else 2
    if width < 2:
        ln, f = rows[0]
        raise ValueError(f"{path}, line {ln}: expected at least 2 fields (text, label) separated by "
                         f"{sep}, got 1: {f[0][:60]!r}")
    texts, raw_labels = [], []
    for ln, f in rows:
        if len(f) < need or len(f) < 2:
            shown = delimiter.join(f)[:60]
            raise ValueError(f"{path}, line {ln}: expected {max(need, 2)} fields (text, label) "
                             f"separated by {sep}, got {len(f)}: {shown!r}")
        if len(f) > width and head is None and text_column is None and label_column is None:
            raise ValueError(f"{path}, line {ln}: expected {width} fields separated by {sep} (as "
                             f"on line {rows[0][0]}), got {len(f)}; quote a text that contains the "
                             f"separator")
        t, lab = f[ti].strip(), f[li].strip()
        if not t:
            raise ValueError(f"{path}, line {ln}: empty text")
        if not lab:
            raise ValueError(f"{path}, line {ln}: empty label")
        texts.append(t)
        raw_labels.append((ln, lab))
    values = [lab for _, lab in raw_labels]
    if classes is None:
        distinct = set(values)
        if all(re.fullmatch(r"[+-]?\d+", v) for v in distinct):
            classes = sorted(distinct, key=int)
        else:
            classes = sorted(distinct)
    classes = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    labels = np.empty(len(values), dtype=np.int64)
    for k, (ln, lab) in enumerate(raw_labels):
        if lab not in index:
            raise ValueError(f"{path}, line {ln}: label {lab!r} is not one of the classes {classes}")
        labels[k] = index[lab]
    return LabeledText(texts, labels, classes)


def write_labeled_text(path, texts, labels, delimiter="\t", header=("text", "label")):
    """Write (text, label) rows as TSV (or CSV with ``delimiter=','``), quoting where needed."""
    path = os.fspath(path)
    if len(texts) != len(labels):
        raise ValueError(f"write_labeled_text: {len(texts)} texts but {len(labels)} labels")
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        if header:
            w.writerow(header)
        for t, lab in zip(texts, labels):
            w.writerow([t, lab])
    return path
