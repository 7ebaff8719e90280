"""Image captioning, as in the course (Vinyals et al. 2015, "Show and Tell"; Karpathy & Fei-Fei
2015): a ConvNet encodes the image into a feature vector, and a recurrent decoder (Embedding +
LSTM, one-to-many) writes the caption word by word.

The image conditions the decoder through its initial state: h0 = tanh(W_h f + b_h),
c0 = W_c f + b_c, with f the encoder's feature vector. Training uses teacher forcing: the decoder
reads ``<bos> w1 ... wn`` and is scored (cross-entropy) on predicting ``w1 ... wn <eos>``.
Decoding is greedy (the most likely word at each step) or beam search (the ``beam_size`` most
likely prefixes by summed log-probability); beam search with one beam is greedy decoding.

>>> model = Captioner(len(vocab), in_channels=3, image_size=24)
>>> loss = model.loss(images, ids)                 # ids (N, T): <bos> w1 ... wn <eos> <pad> ...
>>> model.generate(images, beam_size=3)            # lists of word ids, without <bos> / <eos>
>>> model.caption(images, vocab)                   # ['a red circle above a blue square', ...]

Training and BLEU scoring: ``chainrule.applications.captioning``.
"""

import numpy as np

from .. import nn
from ..autograd import Tensor, no_grad
from ..nn import functional as F

__all__ = ['Captioner', 'conv_encoder']


def conv_encoder(in_channels=3, image_size=24, width=16, feature_dim=128, batch_norm=True):
    """A small ConvNet: three blocks of 3x3 convolution (width, 2 width, 4 width channels),
    batch norm, ReLU and 2x2 max pooling, then a fully connected layer to ``feature_dim`` with ReLU.
    The spatial map is flattened, not averaged, so the features keep where things are (which the
    captions need: "above", "to the left of"). Images (N, C, S, S) -> (N, feature_dim)."""
    if image_size % 8 or image_size < 8:
        raise ValueError(f"conv_encoder: image_size must be a positive multiple of 8, got {image_size}")
    layers, c = [], in_channels
    for w in (width, 2 * width, 4 * width):
        layers.append(nn.Conv2d(c, w, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(w))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        c = w
    side = image_size // 8
    layers += [nn.Flatten(), nn.Linear(c * side * side, feature_dim), nn.ReLU()]
    return nn.Sequential(*layers)


class Captioner(nn.Module):
    """CNN encoder -> feature vector -> Embedding + LSTM decoder -> word scores.

    Args:
        vocab_size: the number of word ids (the vocabulary's length).
        encoder: any module mapping images (N, C, H, W) to features (N, feature_dim) (e.g. a
            ``FeatureExtractor`` over a pretrained network); default ``conv_encoder(...)``.
        feature_dim: the encoder's output size (needed with a custom encoder).
        embed_dim, hidden_size, num_layers: the decoder's sizes.
        pad_index, bos_index, eos_index: the special word ids (a caption vocabulary's 0, 2, 3).
    """

    def __init__(self, vocab_size, encoder=None, feature_dim=128, embed_dim=32, hidden_size=128,
                 num_layers=1, in_channels=3, image_size=24, width=16, pad_index=0, bos_index=2,
                 eos_index=3):
        super().__init__()
        if vocab_size < 4:
            raise ValueError(f"Captioner: vocab_size must be at least 4 (the special tokens), "
                             f"got {vocab_size}")
        for name, i in (("pad_index", pad_index), ("bos_index", bos_index), ("eos_index", eos_index)):
            if not 0 <= i < vocab_size:
                raise ValueError(f"Captioner: {name} {i} is outside the vocabulary [0, {vocab_size})")
        self.config = {"vocab_size": int(vocab_size), "feature_dim": int(feature_dim),
                       "embed_dim": int(embed_dim), "hidden_size": int(hidden_size),
                       "num_layers": int(num_layers), "in_channels": int(in_channels),
                       "image_size": int(image_size), "width": int(width),
                       "pad_index": int(pad_index), "bos_index": int(bos_index),
                       "eos_index": int(eos_index), "custom_encoder": encoder is not None}
        self.vocab_size, self.hidden_size, self.num_layers = int(vocab_size), int(hidden_size), int(num_layers)
        self.pad_index, self.bos_index, self.eos_index = int(pad_index), int(bos_index), int(eos_index)
        self.encoder = encoder if encoder is not None else conv_encoder(
            in_channels, image_size, width, feature_dim)
        self.init_h = nn.Linear(feature_dim, hidden_size * num_layers)
        self.init_c = nn.Linear(feature_dim, hidden_size * num_layers)
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_index)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)

    # -- pieces ------------------------------------------------------------------------------------
    def _dtype(self):
        return self.out.weight.data.dtype

    def _images(self, images):
        x = images if isinstance(images, Tensor) else Tensor(np.asarray(images))
        if x.ndim != 4:
            raise ValueError(f"Captioner: expected images (N, C, H, W), got shape {x.shape}")
        if x.dtype != self._dtype():
            x = Tensor(x.data.astype(self._dtype()))
        return x

    def encode(self, images):
        """Image feature vectors (N, feature_dim)."""
        f = self.encoder(self._images(images))
        if f.ndim != 2:
            f = f.reshape(f.shape[0], -1)
        return f

    def init_state(self, features):
        """The decoder's initial (h0, c0), each (num_layers, N, H), from image features (N, F)."""
        n, L, H = features.shape[0], self.num_layers, self.hidden_size
        h0 = self.init_h(features).tanh().reshape(n, L, H).transpose(1, 0, 2)
        c0 = self.init_c(features).reshape(n, L, H).transpose(1, 0, 2)
        return h0, c0

    def forward(self, images, tokens):
        """Teacher forcing: word scores (N, T, V) after reading ``tokens`` (N, T) (from <bos>)."""
        h0, c0 = self.init_state(self.encode(images))
        out, _ = self.lstm(self.embed(np.asarray(_raw(tokens), dtype=np.int64)), (h0, c0))
        return self.out(out)

    def loss(self, images, ids):
        """Mean cross-entropy of predicting each next word of ``ids`` (N, T) (``<bos> w1 ... wn
        <eos>``, padded with <pad>) given the words before it and the image; padding is not scored."""
        ids = np.asarray(_raw(ids), dtype=np.int64)
        if ids.ndim != 2 or ids.shape[1] < 2:
            raise ValueError(f"Captioner.loss: expected ids (N, T) with T >= 2 (<bos> ... <eos>), "
                             f"got shape {ids.shape}")
        inp, tgt = ids[:, :-1], ids[:, 1:]
        h0, c0 = self.init_state(self.encode(images))
        hs, _ = self.lstm(self.embed(inp), (h0, c0))                  # (N, T-1, H)
        keep = np.flatnonzero(tgt.reshape(-1) != self.pad_index)       # score real words only
        h = hs.reshape(-1, self.hidden_size)[keep]
        return F.cross_entropy(self.out(h), tgt.reshape(-1)[keep])

    def _step(self, tokens, state):
        """One decoder step for the last words (B,): (log-probabilities (B, V) float64, state)."""
        out, state = self.lstm(self.embed(tokens[:, None]), state)
        logits = self.out(out.reshape(out.shape[0], self.hidden_size)).data.astype(np.float64)
        z = logits - logits.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True)), logits, state

    # -- decoding ----------------------------------------------------------------------------------
    def greedy(self, images, max_len=20):
        """Greedy decoding: the most likely word at each step, until <eos> or ``max_len`` words.
        Returns one list of word ids per image (without <bos> / <eos>)."""
        was = self.training
        self.eval()
        try:
            with no_grad():
                feats = self.encode(images)
                n = feats.shape[0]
                state = self.init_state(feats)
                tokens = np.full(n, self.bos_index, dtype=np.int64)
                out = [[] for _ in range(n)]
                done = np.zeros(n, dtype=bool)
                for _ in range(max_len):
                    _, logits, state = self._step(tokens, state)
                    tokens = logits.argmax(axis=1)
                    for i in np.flatnonzero(~done):
                        if tokens[i] == self.eos_index:
                            done[i] = True
                        else:
                            out[i].append(int(tokens[i]))
                    if done.all():
                        break
        finally:
            self.train(was)
        return out

    def beam_search(self, images, beam_size=3, max_len=20, length_penalty=0.0):
        """Beam search: keep the ``beam_size`` most likely prefixes (summed log-probabilities) at
        each step; an <eos> among the ``beam_size`` best continuations finishes a caption. Stops when no prefix is alive, when no
        alive prefix can beat the best finished caption (log-probabilities only fall; without a
        length penalty), or after ``max_len`` words. The best finished prefix wins, scored by
        ``logp / len ** length_penalty`` (0: plain log-probability). Ties go to the lower word id,
        so ``beam_size=1`` is exactly ``greedy``. Returns word-id lists (without <bos> / <eos>)."""
        if beam_size < 1:
            raise ValueError(f"Captioner.beam_search: beam_size must be positive, got {beam_size}")
        was = self.training
        self.eval()
        try:
            with no_grad():
                feats = self.encode(images)
                results = []
                for i in range(feats.shape[0]):
                    results.append(self._beam_one(feats[i:i + 1], beam_size, max_len, length_penalty))
        finally:
            self.train(was)
        return results

    def _beam_one(self, feat, k, max_len, alpha):
        if max_len < 1:
            return []
        h, c = self.init_state(feat)
        seqs = [[]]
        scores = np.zeros(1)
        last = np.array([self.bos_index], dtype=np.int64)
        finished = []                                   # (score, words)
        V = self.vocab_size

        def final(score, words):
            return score / (max(len(words), 1) ** alpha) if alpha else score

        for _ in range(max_len):
            logp, _, (h, c) = self._step(last, (h, c))
            cand = (scores[:, None] + logp).reshape(-1)
            # the best 2k candidates hold at least k that are not <eos> (one <eos> per beam)
            order = np.argsort(-cand, kind="stable")[:2 * k]    # ties: lower beam, lower word id
            alive_idx, new_seqs, new_scores, new_last = [], [], [], []
            for rank, j in enumerate(order):
                b, w = divmod(int(j), V)
                if w == self.eos_index:
                    if rank < k:                                 # an ending among the best k
                        finished.append((final(cand[j], seqs[b]), seqs[b]))
                elif len(alive_idx) < k:                         # keep k prefixes alive
                    alive_idx.append(b)
                    new_seqs.append(seqs[b] + [w])
                    new_scores.append(cand[j])
                    new_last.append(w)
            if not alive_idx:
                break
            # log-probabilities only fall as words are added: once the best finished caption
            # scores at least as well as every alive prefix, none of them can overtake it
            if finished and not alpha and max(f[0] for f in finished) >= max(new_scores):
                break
            sel = np.asarray(alive_idx)
            h, c = h[:, sel], c[:, sel]
            seqs, scores = new_seqs, np.asarray(new_scores)
            last = np.asarray(new_last, dtype=np.int64)
        else:
            finished += [(final(s, q), q) for s, q in zip(scores, seqs)]   # ran out of length
        best = max(range(len(finished)), key=lambda m: (finished[m][0], -m))
        return finished[best][1]

    def generate(self, images, beam_size=1, max_len=20, length_penalty=0.0):
        """Word ids per image: ``greedy`` for ``beam_size=1``, else ``beam_search``."""
        if beam_size == 1:
            return self.greedy(images, max_len)
        return self.beam_search(images, beam_size, max_len, length_penalty)

    def caption(self, images, vocab, beam_size=1, max_len=20, batch_size=256):
        """Captions as strings (one per image) via ``vocab.decode``."""
        images = _raw(images)
        out = []
        for i in range(0, len(images), batch_size):
            for ids in self.generate(images[i:i + batch_size], beam_size, max_len):
                out.append(" ".join(vocab.decode(ids)))
        return out


def _raw(x):
    return x.data if isinstance(x, Tensor) else x
