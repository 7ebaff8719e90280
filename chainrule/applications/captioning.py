"""Training and scoring an image captioner (``chainrule.models.captioner.Captioner``): teacher forcing
with Adam and a cosine learning rate, corpus BLEU on held-out images, checkpoints with the vocabulary.

>>> fit_captioner(model, train, vocab, epochs=60)
>>> evaluate_captioner(model, val, vocab, beam_size=3)      # {'bleu1': ..., 'bleu4': ...}
"""
import math
import time
import numpy as np
from ..models.captioner import Captioner

__all__ = ['fit_captioner', 'evaluate_captioner', 'save_captioner', 'load_captioner']


def fit_captioner(model, data, vocab, epochs=30, batch_size=64, lr=3e-3, weight_decay=0.0,
                  clip=5.0, seed=0, val_data=None, eval_every=0, beam_size=1, progress=True,
                  log=print):
    """Train ``model`` on ``data`` (a ``CaptionData``) with teacher forcing and Adam.

    Each epoch visits every image once with one of its captions drawn at random (so every caption
    is seen, and the encoder runs once per image per epoch). The learning rate follows a cosine
    from ``lr`` to ``lr / 20``; gradients are clipped to norm ``clip``. With ``val_data`` and
    ``eval_every`` > 0, BLEU on it is logged every ``eval_every`` epochs. Returns a history dict
    (``loss`` per epoch; ``val`` [(epoch, scores)])."""
    from .. import optim
    from ..data.captions import encode_captions
    rng = np.random.default_rng(seed)
    opt = optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = optim.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=lr / 20)
    per_image = [encode_captions(vocab, toks)[0] for toks in data.tokens]
    images = data.images.astype(model._dtype())
    n = len(data)
    history = {"loss": [], "val": []}
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs, desc="captioner", unit="epoch", dynamic_ncols=True)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        perm = rng.permutation(n)
        pick = rng.integers(0, 1 << 30, size=n)
        total, count = 0.0, 0
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            rows = [per_image[i][pick[i] % len(per_image[i])] for i in idx]
            T = max(int((r != vocab.pad_index).sum()) for r in rows)
            ids = np.full((len(rows), T), vocab.pad_index, dtype=np.int64)
            for j, r in enumerate(rows):
                ids[j, :len(r)] = r[:T]
            opt.zero_grad()
            loss = model.loss(images[idx], ids)
            loss.backward()
            if clip:
                optim.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            lv = float(loss.data)
            if not math.isfinite(lv):
                raise FloatingPointError(f"fit_captioner: the loss became {lv} in epoch {epoch + 1}")
            total += lv * len(idx)
            count += len(idx)
        sched.step()
        history["loss"].append(total / count)
        msg = f"epoch {epoch + 1}/{epochs} loss {total / count:.4f} ({time.perf_counter() - t0:.1f}s)"
        if val_data is not None and eval_every and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
            scores = evaluate_captioner(model, val_data, vocab, beam_size=beam_size)
            history["val"].append((epoch + 1, scores))
            msg += " val " + " ".join(f"{k}={v:.3f}" for k, v in scores.items())
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(msg.split(" ", 2)[2])
        elif log:
            log(msg)
    if bar is not None:
        bar.close()
    return history


def evaluate_captioner(model, data, vocab, beam_size=1, max_len=20, return_captions=False):
    """Corpus BLEU-1..4 of the model's captions for ``data``'s images against all their captions."""
    from ..applications.text_metrics import bleu_scores
    hyps = [c.split() for c in model.caption(data.images, vocab, beam_size=beam_size,
                                             max_len=max_len)]
    refs = data.tokens
    scores = bleu_scores(refs, hyps)
    if return_captions:
        return scores, [" ".join(h) for h in hyps]
    return scores


def save_captioner(path, model, vocab, image_mode="RGB", **extra):
    """Write the model's weights, settings and vocabulary to ``path`` (``chainrule.save`` format)."""
    import chainrule as cr
    if model.config.get("custom_encoder"):
        raise ValueError("save_captioner: this captioner has a custom encoder that the saved "
                         "settings cannot rebuild; save its state_dict yourself")
    cr.save({"format": "chainrule-captioner", "config": {"kind": "captioner", **model.config},
             "model": model.state_dict(), "vocab": vocab.state_dict(),
             "image": {"mode": image_mode, "size": model.config["image_size"],
                       "channels": model.config["in_channels"]}, **extra}, path)
    return path


def load_captioner(path):
    """``(model, vocab, checkpoint)`` from a file written by ``save_captioner`` (in eval mode)."""
    import chainrule as cr
    from ..data.text import Vocabulary
    state = cr.load(path)
    if not isinstance(state, dict) or state.get("format") != "chainrule-captioner":
        raise ValueError(f"{path} is not a captioner checkpoint (written by 'chainrule "
                         f"train-captioner' or save_captioner)")
    cfg = {k: v for k, v in state["config"].items() if k not in ("kind", "custom_encoder")}
    model = Captioner(**cfg)
    model.load_state_dict(state["model"])
    model.eval()
    return model, Vocabulary.from_state_dict(state["vocab"]), state
