"""Training and scoring an image captioner (``chainrule.models.captioner.Captioner``): teacher forcing
with Adam and a cosine learning rate, corpus BLEU on held-out images, checkpoints with the vocabulary.

>>> fit_captioner(model, train, vocab, epochs=60)
>>> evaluate_captioner(model, val, vocab, beam_size=3)      # {'bleu1': ..., 'bleu4': ...}
"""
from ..models.captioner import Captioner

__all__ = ['fit_captioner', 'evaluate_captioner', 'save_captioner', 'load_captioner']


def fit_captioner(model, data, vocab, epochs=30, batch_size=64, lr=3e-3, weight_decay=0.0,
                  clip=5.0, seed=0, val_data=None, eval_every=0, beam_size=1, progress=True,
                  log=print):
    """Train ``model`` on ``data`` (a ``CaptionData``) with teacher forcing and Adam, on ``Trainer``.

    Each epoch visits every image once with one of its captions drawn at random
    (``chainrule.data.captions.caption_batches``). The learning rate follows a cosine from ``lr``
    to ``lr / 20``; gradients are clipped to norm ``clip``. With ``val_data`` and ``eval_every`` >
    0, BLEU on it is logged every ``eval_every`` epochs (and after the last). ``progress``: one bar
    over the epochs; else each epoch's line goes to ``log`` (None: silent). Returns a history dict
    (``loss`` per epoch; ``val`` [(epoch, scores)])."""
    from .. import optim
    from ..data.captions import caption_batches
    from ..train import EpochLog, Trainer
    batches = caption_batches(data, vocab, batch_size, seed, dtype=model._dtype())
    opt = optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = optim.CosineAnnealingLR(opt, T_max=max(epochs, 1), eta_min=lr / 20)
    history = {"loss": [], "val": []}
    scores = {}

    def eval_fn(model, epoch):
        scores.clear()
        due = eval_every and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs)
        if val_data is not None and due:
            scores.update(evaluate_captioner(model, val_data, vocab, beam_size=beam_size))
            history["val"].append((epoch + 1, dict(scores)))
        return {"val_" + k: v for k, v in scores.items()}

    def line(epoch, logs):
        msg = f"loss {logs['loss']:.4f} ({logs['time']:.1f}s)"
        return msg + (" val " + " ".join(f"{k}={v:.3f}" for k, v in scores.items()) if scores else "")

    trainer = Trainer(model, opt, scheduler=sched, clip_grad_norm=clip,
                      compute_loss=lambda m, batch: m.loss(*batch))
    trainer.fit(batches, epochs=epochs, progress=False, eval_fn=eval_fn,
                callbacks=[EpochLog(line, log=log, bar=progress, desc="captioner")])
    history["loss"] = trainer.history.history.get("loss", [])
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
