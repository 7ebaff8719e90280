"""The captioner (CNN encoder -> LSTM decoder): teacher forcing, greedy and beam-search decoding,
checkpoints; and corpus BLEU against hand-computed values."""
import itertools
import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.data.captions import CaptionData, build_caption_vocab, encode_captions
from chainrule.applications.text_metrics import (bleu_scores, corpus_bleu, modified_precision_counts, sentence_bleu)
from chainrule.models.captioner import Captioner, conv_encoder
from chainrule.applications.captioning import (evaluate_captioner, fit_captioner, load_captioner, save_captioner)


def _tiny(vocab_size=12, **kw):
    cr.manual_seed(0)
    args = dict(image_size=16, width=4, feature_dim=16, embed_dim=8, hidden_size=16)
    args.update(kw)
    return Captioner(vocab_size, **args).to("float64")


# -- the model --------------------------------------------------------------------------------------

def test_teacher_forcing_loss_is_the_masked_cross_entropy(rng):
    model = _tiny()
    images = rng.uniform(size=(3, 3, 16, 16))
    ids = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0], [2, 4, 4, 9, 3]])     # <bos> ... <eos> <pad>
    logits = model(images, ids[:, :-1]).data                              # (3, 4, V)
    assert logits.shape == (3, 4, 12)
    tgt = ids[:, 1:]
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    mask = tgt != 0
    want = -(np.take_along_axis(logp, tgt[..., None], -1)[..., 0] * mask).sum() / mask.sum()
    loss = model.loss(images, ids)
    assert float(loss.data) == pytest.approx(want, rel=1e-10)
    loss.backward()
    assert model.encoder[0].weight.grad is not None and model.init_h.weight.grad is not None
    assert np.all(model.embed.weight.grad.data[0] == 0)                  # <pad> row: no gradient


def test_the_image_conditions_the_decoder(rng):
    model = _tiny()
    a, b = rng.uniform(size=(2, 3, 16, 16))
    ids = np.array([[2, 5, 6]])
    la, lb = model(a[None], ids).data, model(b[None], ids).data
    assert not np.allclose(la, lb)


def test_beam_search_with_one_beam_is_greedy(rng):
    for seed in range(3):
        model = _tiny(vocab_size=9, hidden_size=12)
        cr.manual_seed(seed)
        for p in model.out.parameters():          # a sharper output: varied, long captions
            p.data *= 4
        images = rng.uniform(size=(6, 3, 16, 16))
        for max_len in (1, 4, 12):
            greedy = model.greedy(images, max_len=max_len)
            assert model.beam_search(images, beam_size=1, max_len=max_len) == greedy
            assert model.generate(images, beam_size=1, max_len=max_len) == greedy
            assert all(len(g) <= max_len and 3 not in g for g in greedy)


def _log_prob(model, image, words, eos=True):
    """log p(words [+ <eos>] | image) by teacher forcing."""
    seq = [2] + list(words)
    logits = model(image[None], np.array([seq])).data[0].astype(np.float64)
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    targets = list(words) + ([3] if eos else [])
    return sum(logp[t, w] for t, w in enumerate(targets))


def test_a_wide_beam_finds_the_most_likely_caption(rng):
    model = _tiny(vocab_size=6, hidden_size=8)
    max_len = 3
    words = [0, 1, 2, 4, 5]                        # every id but <eos> can be generated
    for image in rng.uniform(size=(3, 3, 16, 16)):
        cands = [(c, True) for k in range(max_len) for c in itertools.product(words, repeat=k)]
        cands += [(c, False) for c in itertools.product(words, repeat=max_len)]  # cut at max_len
        scores = [_log_prob(model, image, c, e) for c, e in cands]
        best = list(cands[int(np.argmax(scores))][0])
        got = model.beam_search(image[None], beam_size=200, max_len=max_len)[0]
        assert got == best
        narrow = model.beam_search(image[None], beam_size=2, max_len=max_len)[0]
        assert _log_prob(model, image, narrow, len(narrow) < max_len) <= max(scores) + 1e-9


def test_overfits_a_few_captions_and_decodes_them(rng):
    images = np.zeros((4, 3, 16, 16), dtype=np.float32)
    for i in range(4):
        images[i, i % 3, 4 * i:4 * i + 4] = 1.0          # four distinct pictures
    caps = [["a red circle"], ["a green square above a red circle"], ["a blue triangle"],
            ["a red square to the left of a blue circle"]]
    data = CaptionData(images, ["0", "1", "2", "3"], caps)
    vocab = build_caption_vocab(data)
    cr.manual_seed(0)
    model = Captioner(len(vocab), image_size=16, width=4, feature_dim=32, embed_dim=16,
                      hidden_size=32)
    hist = fit_captioner(model, data, vocab, epochs=150, batch_size=4, lr=1e-2, progress=False,
                         log=None)
    assert hist["loss"][-1] < 0.05
    assert model.caption(images, vocab) == [c[0] for c in caps]
    assert model.caption(images, vocab, beam_size=3) == [c[0] for c in caps]
    scores = evaluate_captioner(model, data, vocab)
    assert scores["bleu4"] == pytest.approx(1.0) and scores["bleu1"] == pytest.approx(1.0)


def test_save_and_load_give_the_same_captions(tmp_path, rng):
    data = CaptionData(rng.uniform(size=(2, 3, 16, 16)).astype(np.float32), ["a", "b"],
                       [["a red circle"], ["a blue square"]])
    vocab = build_caption_vocab(data)
    cr.manual_seed(0)
    model = Captioner(len(vocab), image_size=16, width=4, feature_dim=8, hidden_size=8, embed_dim=4)
    path = save_captioner(str(tmp_path / "cap.ckpt"), model, vocab)
    again, v2, state = load_captioner(path)
    assert v2.tokens == vocab.tokens and state["image"]["size"] == 16
    assert again.caption(data.images, v2, max_len=5) == model.caption(data.images, vocab, max_len=5)
    with pytest.raises(ValueError, match="not a captioner checkpoint"):
        cr.save({"x": 1}, str(tmp_path / "other.ckpt"))
        load_captioner(str(tmp_path / "other.ckpt"))


def test_captioner_errors(rng):
    with pytest.raises(ValueError, match="vocab_size"):
        Captioner(3)
    with pytest.raises(ValueError, match="multiple of 8"):
        conv_encoder(3, 20)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        _tiny().greedy(rng.uniform(size=(3, 16, 16)))
    with pytest.raises(ValueError, match="beam_size"):
        _tiny().beam_search(rng.uniform(size=(1, 3, 16, 16)), beam_size=0)


def test_a_custom_encoder(rng):
    enc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10), nn.ReLU())
    cr.manual_seed(0)
    model = Captioner(7, encoder=enc, feature_dim=10, hidden_size=6, embed_dim=4)
    out = model(rng.uniform(size=(2, 3, 8, 8)).astype(np.float32), np.array([[2, 4], [2, 5]]))
    assert out.shape == (2, 2, 7) and model.config["custom_encoder"]


# -- BLEU -------------------------------------------------------------------------------------------

REFS = [[s.split() for s in ("a red circle above a green square", "a green square below a red circle")],
        [s.split() for s in ("a blue triangle at the top", "a blue triangle")]]
HYPS = ["a red circle above a blue square".split(), "a blue triangle in the middle".split()]


def test_modified_precision_clips_counts():
    # Papineni et al.'s example: "the the the the the the the" -> 2/7
    refs = ["the cat is on the mat".split(), "there is a cat on the mat".split()]
    assert modified_precision_counts(refs, ["the"] * 7, 1) == (2, 7)


def test_corpus_bleu_by_hand():
    # n-gram matches / totals, summed over both hypotheses (worked out in the module's terms):
    #   1-grams: (6 + 4) / (7 + 6)   2-grams: (4 + 2) / (6 + 5)
    #   3-grams: (3 + 1) / (5 + 4)   4-grams: (2 + 0) / (4 + 3)
    # c = 13, r = 7 + 6 = 13 (the closest reference lengths): no brevity penalty.
    p = [10 / 13, 6 / 11, 4 / 9, 2 / 7]
    want = {f"bleu{n}": math.exp(sum(math.log(x) for x in p[:n]) / n) for n in range(1, 5)}
    got = bleu_scores(REFS, HYPS)
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-12)
    # NLTK 3.9.1's corpus_bleu gives the same four values (checked once outside the suite; NLTK
    # is not a dependency). Every hypothesis has at least 4 words, so NLTK's rule of counting at
    # least one n-gram per sentence does not apply.
    nltk = {"bleu1": 0.7692307692307693, "bleu2": 0.6477502756312957,
            "bleu3": 0.5713175497487949, "bleu4": 0.48044221728783065}
    for k, v in nltk.items():
        assert got[k] == pytest.approx(v, rel=1e-12)
    assert corpus_bleu(REFS, HYPS, weights=(0.5, 0.5)) == pytest.approx(want["bleu2"])
    assert corpus_bleu(REFS, HYPS) == pytest.approx(want["bleu4"])


def test_bleu_brevity_penalty_and_edge_cases():
    ref = [["a red circle above a blue square".split()]]
    short = ["a red circle above".split()]              # every n-gram matches; c = 4, r = 7
    assert corpus_bleu(ref, short) == pytest.approx(math.exp(1 - 7 / 4))
    assert corpus_bleu(ref, [ref[0][0]]) == 1.0
    assert sentence_bleu(ref[0], "a green triangle".split()) == 0.0   # no 2-gram matches
    assert corpus_bleu(ref, [[]]) == 0.0
    # closest reference length, the shorter on a tie: hyp of 5 words, refs of 4 and 6 -> r = 4
    refs = [["a b c d".split(), "a b c d e f".split()]]
    assert corpus_bleu(refs, ["a b c d e".split()], weights=(1.0,)) == 1.0
    assert corpus_bleu(refs, ["a b c".split()], weights=(1.0,)) == pytest.approx(math.exp(1 - 4 / 3))
    with pytest.raises(ValueError, match="reference lists"):
        corpus_bleu(REFS, HYPS[:1])
    with pytest.raises(TypeError, match="string"):
        corpus_bleu(REFS[:1], ["a red circle"])


def test_encode_captions_frame_with_bos_and_eos():
    data = CaptionData(np.zeros((1, 3, 8, 8)), ["x"], [["A red circle.", "a circle"]])
    vocab = build_caption_vocab(data)
    ids, lengths = encode_captions(vocab, data.tokens[0])
    assert vocab.tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert ids[0, 0] == vocab.bos_index and ids[0, lengths[0] - 1] == vocab.eos_index
    assert vocab.decode(ids[0]) == ["a", "red", "circle", "."] and ids[1, -1] == vocab.pad_index
