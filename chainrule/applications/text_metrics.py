"""BLEU (Papineni et al. 2002, "BLEU: a Method for Automatic Evaluation of Machine Translation"),
at the corpus level, with several references per hypothesis.

    p_n  = sum over hypotheses of clipped n-gram matches / sum over hypotheses of n-grams
           (an n-gram's count is clipped at its largest count in any one reference)
    BP   = 1 if c > r else exp(1 - r / c)   c: total hypothesis length, r: total length of the
                                            reference closest in length to each hypothesis
                                            (the shorter one on a tie)
    BLEU-N = BP * exp(sum_{n=1..N} (1/N) log p_n)

This is corpus BLEU as Papineni et al. define it, and as NLTK's ``corpus_bleu`` computes it without
smoothing, with one difference: NLTK counts a hypothesis shorter than n words as having one n-gram
(its denominator is at least 1 per sentence); here it has none. On corpora whose hypotheses all
have at least N words the two agree.

>>> refs = [[["a", "red", "circle", "above", "a", "blue", "square"]]]
>>> corpus_bleu(refs, [["a", "red", "circle", "above", "a", "blue", "square"]])       # 1.0
>>> bleu_scores(refs, hyps)          # {'bleu1': ..., 'bleu2': ..., 'bleu3': ..., 'bleu4': ...}
"""
import math
from collections import Counter

__all__ = ["ngrams", "modified_precision_counts", "corpus_bleu", "bleu_scores", "sentence_bleu"]


def ngrams(tokens, n):
    """The n-grams of a token list, as tuples, in order."""
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def modified_precision_counts(references, hypothesis, n):
    """(clipped matches, hypothesis n-grams) for one hypothesis against its references."""
    counts = Counter(ngrams(hypothesis, n))
    if not counts:
        return 0, 0
    max_ref = Counter()
    for ref in references:
        for g, c in Counter(ngrams(ref, n)).items():
            if c > max_ref[g]:
                max_ref[g] = c
    matched = sum(min(c, max_ref[g]) for g, c in counts.items())
    return matched, sum(counts.values())


def _check(list_of_references, hypotheses):
    if isinstance(hypotheses, str) or len(list_of_references) != len(hypotheses):
        raise ValueError(f"corpus_bleu: {len(list_of_references)} reference lists for "
                         f"{len(hypotheses)} hypotheses (one list of references per hypothesis)")
    for i, (refs, hyp) in enumerate(zip(list_of_references, hypotheses)):
        if isinstance(hyp, str):
            raise TypeError(f"corpus_bleu: hypothesis {i} is a string; give token lists "
                            f"(e.g. caption.split())")
        if isinstance(refs, str) or not refs or isinstance(refs[0], str):
            raise TypeError(f"corpus_bleu: the references of hypothesis {i} must be a non-empty "
                            f"list of token lists")


def _stats(list_of_references, hypotheses, max_n):
    matched, total = [0] * max_n, [0] * max_n
    c = r = 0
    for refs, hyp in zip(list_of_references, hypotheses):
        hyp = list(hyp)
        refs = [list(ref) for ref in refs]
        c += len(hyp)
        r += min((len(ref) for ref in refs), key=lambda L: (abs(L - len(hyp)), L))
        for n in range(1, max_n + 1):
            m, t = modified_precision_counts(refs, hyp, n)
            matched[n - 1] += m
            total[n - 1] += t
    return matched, total, c, r


def _bleu(matched, total, c, r, weights):
    if c == 0:
        return 0.0
    log_p = 0.0
    for w, m, t in zip(weights, matched, total):
        if w == 0:
            continue
        if m == 0 or t == 0:
            return 0.0                      # a zero precision makes the geometric mean zero
        log_p += w * math.log(m / t)
    bp = 1.0 if c > r else math.exp(1.0 - r / c)
    return bp * math.exp(log_p)


def corpus_bleu(list_of_references, hypotheses, weights=(0.25, 0.25, 0.25, 0.25)):
    """Corpus BLEU of token-list ``hypotheses`` against ``list_of_references`` (for each hypothesis a
    list of reference token lists). ``weights``: one per n-gram order, (0.25,) * 4 for BLEU-4,
    (1.0,) for BLEU-1. Returns a float in [0, 1]."""
    _check(list_of_references, hypotheses)
    if not weights:
        raise ValueError("corpus_bleu: weights must name at least one n-gram order")
    matched, total, c, r = _stats(list_of_references, hypotheses, len(weights))
    return _bleu(matched, total, c, r, weights)


def bleu_scores(list_of_references, hypotheses, max_n=4):
    """BLEU-1 .. BLEU-max_n (uniform weights over orders 1..n) in one pass:
    ``{'bleu1': ..., ..., 'bleu4': ...}``."""
    _check(list_of_references, hypotheses)
    matched, total, c, r = _stats(list_of_references, hypotheses, max_n)
    return {f"bleu{n}": _bleu(matched[:n], total[:n], c, r, (1.0 / n,) * n)
            for n in range(1, max_n + 1)}


def sentence_bleu(references, hypothesis, weights=(0.25, 0.25, 0.25, 0.25)):
    """BLEU of one hypothesis (no smoothing: zero when some order has no match)."""
    return corpus_bleu([references], [hypothesis], weights)
