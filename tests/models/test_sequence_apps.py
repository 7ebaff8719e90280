"""The sequence applications (chainrule.models.char_rnn, seq2seq, sequence): tiny versions trained for
a few steps (the loss falls), shapes, seeded determinism, sampling with temperature and top-k,
padding and lengths, and errors."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.data.text import CharVocabulary, UnknownTokenError, Vocabulary, tokenize
from chainrule.models.char_rnn import CharRNN
from chainrule.applications.text_generation import (evaluate_char_rnn, load_char_rnn, make_streams, sample, sample_next, save_char_rnn, train_char_rnn)
from chainrule.models.seq2seq import Seq2Seq, greedy_decode
from chainrule.applications.seq2seq import (build_vocabs, encode_pairs, exact_match_accuracy, make_task, masked_cross_entropy, train_seq2seq)
from chainrule.models.sequence import (TDNN, GRUClassifier, SequenceClassifier, SequenceTagger, lengths_from_padding)
from chainrule.applications.sequence_tasks import (AMBIGUOUS, TAGS, evaluate_tagger, make_sentiment_data, make_tagging_data, masked_accuracy,
                                                   train_tagger)
from chainrule.applications.sequence_tasks import masked_cross_entropy as tag_loss
from chainrule.nn import functional as F

TEXT = "the cat sat on the mat. the dog sat on the log. " * 12


def tiny_char_model(vocab, seed=0):
    cr.manual_seed(seed)
    return CharRNN(len(vocab), embedding_dim=8, hidden_size=16)


# -- character LM ---------------------------------------------------------------------------------

def test_char_rnn_shapes_and_state_carry():
    vocab = CharVocabulary.build(TEXT)
    m = tiny_char_model(vocab)
    x = vocab.encode(TEXT[:20]).reshape(2, 10)
    logits, (h, c) = m(x)
    assert logits.shape == (2, 10, len(vocab)) and h.shape == (1, 2, 16) and c.shape == (1, 2, 16)
    # two chunks with the state carried = one pass over the whole sequence
    a, st = m(x[:, :4])
    b, _ = m(x[:, 4:], st)
    np.testing.assert_allclose(np.concatenate([a.data, b.data], axis=1), logits.data, atol=1e-5)
    assert m.config()["cell"] == "lstm"
    with pytest.raises(ValueError, match="cell must be one of"):
        CharRNN(5, cell="transformer")


def test_make_streams_continue_the_text_row_by_row():
    x, y = make_streams(np.arange(23), 4)
    assert x.shape == y.shape == (4, 5)
    assert x[1, 0] == 5 and y[0].tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="too few for 8 streams"):
        make_streams(np.arange(5), 8)


def test_truncated_bptt_training_lowers_the_loss_and_is_seeded():
    kw = dict(epochs=6, seq_len=8, batch_size=4, embedding_dim=8, hidden_size=24, lr=1e-2, seed=3)
    _, vocab, h1 = train_char_rnn(TEXT, **kw)
    assert h1["loss"][-1] < 0.75 * h1["loss"][0]
    assert h1["val_loss"][-1] < h1["val_loss"][0]
    assert len(h1["loss"]) == len(h1["val_loss"]) == len(h1["time"]) == 6
    _, _, h2 = train_char_rnn(TEXT, **kw)
    assert h1["loss"] == h2["loss"] and h1["val_loss"] == h2["val_loss"]     # bit for bit
    _, _, h3 = train_char_rnn(TEXT, **dict(kw, seed=4))
    assert h3["loss"] != h1["loss"]


def test_train_char_rnn_errors():
    with pytest.raises(ValueError, match="empty"):
        train_char_rnn("")
    with pytest.raises(ValueError, match="too few for a batch of 64"):
        train_char_rnn("abcdefghij" * 3, batch_size=64, epochs=1)
    vocab = CharVocabulary.build("abc")
    with pytest.raises(UnknownTokenError, match="'d'.*training text"):
        train_char_rnn("abcd" * 40, vocab=vocab, epochs=1, batch_size=2)


def test_sample_greedy_is_deterministic_and_seeded_sampling_repeats():
    vocab = CharVocabulary.build(TEXT)
    m = tiny_char_model(vocab)
    g1 = sample(m, vocab, "the ", 30, top_k=1, seed=1)
    g2 = sample(m, vocab, "the ", 30, top_k=1, seed=2)
    assert g1 == g2 and g1.startswith("the ") and len(g1) == 34
    # greedy = argmax, step by step
    ids = list(vocab.encode("the "))
    with cr.no_grad():
        for _ in range(30):
            logits, _ = m(np.array([ids]))
            ids.append(int(logits.data[0, -1].argmax()))
    assert vocab.decode_text(ids) == g1
    s1 = sample(m, vocab, "the ", 40, temperature=1.0, seed=7)
    s2 = sample(m, vocab, "the ", 40, temperature=1.0, seed=7)
    s3 = sample(m, vocab, "the ", 40, temperature=1.0, seed=8)
    assert s1 == s2 and s1 != s3
    assert m.training                                   # the mode is restored
    assert sample(m, vocab, "t", 0) == "t"


def test_temperature_and_top_k_shape_the_distribution():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    rng = np.random.default_rng(0)
    batch = np.tile(logits, (4000, 1))                 # 4000 independent draws in one call
    draws = lambda **kw: sample_next(batch, rng=rng, **kw)   # noqa: E731
    cold, warm, hot = draws(temperature=0.3), draws(temperature=1.0), draws(temperature=5.0)
    assert (cold == 0).mean() > (warm == 0).mean() > (hot == 0).mean()
    assert abs((warm == 0).mean() - 0.5) < 0.04 and abs((warm == 3).mean() - 0.05) < 0.02
    top2 = draws(temperature=5.0, top_k=2)
    assert set(np.unique(top2)) == {0, 1}              # never outside the two most likely
    assert sample_next(logits, top_k=1) == 0
    batch = sample_next(np.stack([logits, logits[::-1]]), top_k=1)
    assert batch.tolist() == [0, 3]
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        sample_next(logits, temperature=0)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        sample_next(logits, top_k=0)


def test_sample_errors_name_the_unknown_character():
    vocab = CharVocabulary.build(TEXT)
    m = tiny_char_model(vocab)
    with pytest.raises(UnknownTokenError) as e:
        sample(m, vocab, "the Cat", 5)
    assert "'C' (U+0043) at position 4 of the prime text" in str(e.value)
    with pytest.raises(ValueError, match="prime must be a non-empty string"):
        sample(m, vocab, "", 5)
    with pytest.raises(ValueError, match=f"has {len(vocab)} entries but the model {len(vocab) + 1}"):
        sample(CharRNN(len(vocab) + 1, 4, 4), vocab, "t", 3)


def test_char_checkpoint_round_trip(tmp_path):
    vocab = CharVocabulary.build(TEXT)
    m = tiny_char_model(vocab)
    path = save_char_rnn(tmp_path / "c.ckpt", m, vocab, start="t", history={"loss": [1.0]})
    m2, v2, meta = load_char_rnn(path)
    assert v2 == vocab and meta["start"] == "t" and meta["history"]["loss"] == [1.0]
    assert sample(m2, v2, "the", 20, top_k=1) == sample(m, vocab, "the", 20, top_k=1)
    ids = vocab.encode(TEXT[:100])
    assert evaluate_char_rnn(m2, ids, seq_len=16) == pytest.approx(evaluate_char_rnn(m, ids, 16))
    cr.save({"something": 1}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not a character language-model checkpoint"):
        load_char_rnn(tmp_path / "other.ckpt")


# -- seq2seq --------------------------------------------------------------------------------------

def test_tasks_are_right_distinct_and_exclude_held_out():
    for task, check in (("reverse", lambda s, t: t == s[::-1]), ("sort", lambda s, t: t == sorted(s))):
        pairs = make_task(task, 50, 2, 6, seed=0)
        assert all(check(s, t) and 2 <= len(s) <= 6 for s, t in pairs)
        assert len({"".join(s) for s, _ in pairs}) == 50
    dates = make_task("dates", 30, seed=0)
    import re
    assert all(re.fullmatch(r"(19[5-9]\d|20[0-4]\d)-\d\d-\d\d", "".join(t)) for _, t in dates)
    train = make_task("reverse", 200, 3, 4, seed=0)
    test = make_task("reverse", 50, 3, 4, seed=1, exclude={"".join(s) for s, _ in train})
    assert not {"".join(s) for s, _ in train} & {"".join(s) for s, _ in test}
    assert make_task("reverse", 20, seed=5) == make_task("reverse", 20, seed=5)
    with pytest.raises(ValueError, match="task must be one of"):
        make_task("translate", 3)
    with pytest.raises(ValueError, match="could not draw"):
        make_task("reverse", 50, 1, 1, alphabet="ab")


def test_encode_pairs_teacher_forcing_layout():
    pairs = [(list("12"), list("21")), (list("345"), list("543"))]
    sv, tv = build_vocabs(pairs)
    src, src_len, tgt_in, tgt_out = encode_pairs(pairs, sv, tv)
    assert src_len.tolist() == [2, 3] and src.shape == (2, 3) and src[0, 2] == sv.pad_index
    assert tgt_in[0, 0] == tv.bos_index and tgt_out[0, 2] == tv.eos_index
    np.testing.assert_array_equal(tgt_in[1, 1:], tgt_out[1, :3])        # shifted by one
    assert tgt_out[0, 3] == tv.pad_index


def test_masked_cross_entropy_ignores_padding():
    rng = np.random.default_rng(0)
    logits = cr.tensor(rng.standard_normal((2, 4, 5)), requires_grad=True)
    y = np.array([[1, 2, 0, 0], [3, 1, 4, 2]])
    loss = masked_cross_entropy(logits, y, pad_index=0)
    full = F.cross_entropy(logits.reshape(-1, 5), y.reshape(-1), reduction="none").data
    assert loss.item() == pytest.approx(full[y.reshape(-1) != 0].mean())
    loss.backward()
    assert np.all(logits.grad.data[0, 2:] == 0)                       # no gradient into padding
    with pytest.raises(ValueError, match="every target is padding"):
        masked_cross_entropy(logits, np.zeros((2, 4), dtype=np.int64))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_seq2seq_learns_a_little_and_decodes_greedily(cell):
    pairs = make_task("reverse", 256, 2, 4, alphabet="0123", seed=0)
    sv, tv = build_vocabs(pairs)
    cr.manual_seed(0)
    m = Seq2Seq(len(sv), len(tv), 8, 32, cell=cell, bos_index=tv.bos_index, eos_index=tv.eos_index)
    src, src_len, tgt_in, tgt_out = encode_pairs(pairs[:4], sv, tv)
    assert m(src, src_len, tgt_in).shape == (4, tgt_in.shape[1], len(tv))
    h = train_seq2seq(m, pairs, sv, tv, epochs=3, batch_size=32, lr=1e-2, seed=0,
                      val_pairs=pairs[:20])
    assert h["loss"][-1] < 0.8 * h["loss"][0]
    assert len(h["val_exact_match"]) == 3 and h["lr"][0] > h["lr"][-1]            # cosine decay
    out = greedy_decode(m, src, src_len, max_len=7)
    assert out.shape == (4, 7) and out.dtype == np.int64
    for row in out:                                        # after <eos> only padding
        eos = np.flatnonzero(row == tv.eos_index)
        if len(eos):
            assert np.all(row[eos[0] + 1:] == tv.pad_index)
    acc, preds = exact_match_accuracy(m, pairs[:20], sv, tv, return_predictions=True)
    assert 0 <= acc <= 1 and len(preds) == 20
    assert acc == np.mean([p == t for p, (_, t) in zip(preds, pairs[:20])])
    assert m.training


# -- classifiers and taggers ----------------------------------------------------------------------

def test_lengths_from_padding():
    ids = np.array([[5, 6, 0, 0], [5, 0, 7, 0], [0, 0, 0, 0], [1, 2, 3, 4]])
    assert lengths_from_padding(ids).tolist() == [2, 3, 1, 4]
    with pytest.raises(TypeError, match="integer token ids"):
        lengths_from_padding(np.zeros((2, 3)))


@pytest.mark.parametrize("cell, bidirectional", [("lstm", False), ("gru", True)])
def test_classifier_reads_each_sequence_to_its_length(cell, bidirectional):
    cr.manual_seed(0)
    m = SequenceClassifier(20, 3, embedding_dim=6, hidden_size=8, cell=cell,
                           bidirectional=bidirectional)
    ids = np.array([[4, 5, 6, 0, 0], [7, 8, 9, 10, 11], [3, 0, 0, 0, 0]])
    out = m(ids)
    assert out.shape == (3, 3)
    np.testing.assert_allclose(m(ids, np.array([3, 5, 1])).data, out.data)
    # more padding changes nothing: the padding is never read
    wider = np.concatenate([ids, np.zeros((3, 4), dtype=np.int64)], axis=1)
    np.testing.assert_allclose(m(wider).data, out.data, atol=1e-6)
    # each row alone gives the same result as in the batch
    np.testing.assert_allclose(m(ids[2:, :1]).data, out.data[2:], atol=1e-6)


def test_sentiment_classifier_trains_on_synthetic_reviews():
    texts, labels = make_sentiment_data(200, seed=0)
    assert texts == make_sentiment_data(200, seed=0)[0]
    assert 0.35 < np.mean([lab == "pos" for lab in labels]) < 0.65
    toks = [tokenize(t) for t in texts]
    vocab = Vocabulary.build(toks)
    X, lengths = vocab.encode_batch(toks)
    y = np.array([lab == "pos" for lab in labels], dtype=np.int64)
    cr.manual_seed(0)
    m = SequenceClassifier(len(vocab), 2, embedding_dim=8, hidden_size=16)
    opt = optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for step in range(25):
        idx = np.arange(step * 8, step * 8 + 8) % 200
        opt.zero_grad()
        loss = F.cross_entropy(m(X[idx], lengths[idx]), y[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_tagger_shapes_masked_loss_and_training():
    data = make_tagging_data(120, seed=0)
    assert all(len(w) == len(t) and set(t) <= set(TAGS) for w, t in data)
    assert any(w in AMBIGUOUS and t == "VERB" for ws, ts in data for w, t in zip(ws, ts))
    words = Vocabulary.build([w for w, _ in data])
    tags = Vocabulary(TAGS, specials=("<pad>",), unk=None)
    X, L = words.encode_batch([w for w, _ in data])
    Y, _ = tags.encode_batch([t for _, t in data])
    cr.manual_seed(0)
    m = SequenceTagger(len(words), len(tags), embedding_dim=8, hidden_size=16)
    logits = m(X[:5], L[:5])
    assert logits.shape == (5, X.shape[1], len(tags))
    # the loss ignores whatever the model says at padding positions
    z = logits.data.copy()
    z[np.arange(X.shape[1])[None, :] >= L[:5, None]] = 100.0
    a = tag_loss(cr.tensor(z), Y[:5], L[:5]).item()
    b = tag_loss(cr.tensor(np.where(z == 100.0, -7.0, z)), Y[:5], L[:5]).item()
    assert a == pytest.approx(b)
    assert 0 <= masked_accuracy(logits, Y[:5], L[:5]) <= 1
    before = evaluate_tagger(m, X, Y, L)
    h = train_tagger(m, X, Y, L, epochs=3, batch_size=16, lr=1e-2, seed=0, val_data=(X, Y, L))
    assert h["loss"][-1] < h["loss"][0] and h["val_accuracy"][-1] > before
    with pytest.raises(ValueError, match="differ in shape"):
        train_tagger(m, X, Y[:, :-1], L)


def test_gru_classifier_and_tdnn_on_signals():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 40)).astype(np.float32)
    y = (X[:, :20].mean(1) > X[:, 20:].mean(1)).astype(np.int64)
    cr.manual_seed(0)
    for m in (GRUClassifier(1, 16, 2), TDNN(1, 2, channels=8, dilations=(1, 2, 4))):
        assert m(X[:3]).shape == (3, 2)
        opt = optim.Adam(m.parameters(), lr=1e-2)
        losses = []
        for _ in range(15):
            opt.zero_grad()
            loss = F.cross_entropy(m(X), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0]
    assert TDNN(dilations=(1, 2, 4, 8)).receptive_field == 31
    assert GRUClassifier(3, 4, 5)(rng.standard_normal((2, 7, 3)).astype(np.float32)).shape == (2, 5)
    with pytest.raises(ValueError, match=r"GRUClassifier\(input_size=1\): expected \(N, T\)"):
        GRUClassifier()(np.zeros((2, 5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"TDNN\(in_channels=1\)"):
        TDNN()(np.zeros((2, 3, 5), dtype=np.float32))
