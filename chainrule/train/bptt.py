"""Truncated back-propagation through time (Williams & Peng 1990; the course's "carry hidden states
forward in time forever, but only backpropagate for some smaller number of steps").

A long sequence (N, T, ...) is walked in chunks of k steps. The hidden state is carried from chunk to
chunk, but detached at each boundary, so every backward pass runs through at most k steps and the
graph of earlier chunks is never kept.

Training runs on the one loop: a stateful ``Trainer`` over the chunks (``TBPTT`` for one sequence;
``chainrule.applications.text_generation.train_char_rnn`` epoch by epoch):

>>> def chunk_loss(model, batch, state):
...     x, y = batch
...     logits, state = model(x, state)
...     return F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)), state
>>> chunks = [(xc, yc) for _, xc, yc in truncated_bptt_chunks(x, 32, y)]
>>> Trainer(model, opt, compute_loss=chunk_loss, stateful=True, clip_grad_norm=5.0).fit(
...     lambda epoch: chunks, epochs=10)

``truncated_bptt`` walks the chunks with a step function of your own:

>>> def step(x, y, state):                     # one chunk: forward, loss, backward, update
...     opt.zero_grad()
...     logits, state = model(x, state)
...     loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
...     loss.backward()
...     clip_grad_norm_(model.parameters(), 5.0)
...     opt.step()
...     return loss.item(), state
>>> losses, state = truncated_bptt(step, x, k=32, targets=y)
"""
from .loop import Trainer, detach_state

__all__ = ["detach_state", "truncated_bptt_chunks", "truncated_bptt", "TBPTT"]


def _slice(a, start, stop, axis):
    if a is None:
        return None
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(start, stop)
    idx = tuple(idx)
    return a[idx]


def truncated_bptt_chunks(x, k, targets=None, time_axis=1):
    """Yield (start, x_chunk, target_chunk) over consecutive windows of ``k`` steps along
    ``time_axis`` (the last window may be shorter). ``x`` / ``targets``: Tensors or arrays."""
    k = int(k)
    if k < 1:
        raise ValueError(f"truncated_bptt_chunks: chunk length k must be >= 1, got {k}")
    T = x.shape[time_axis]
    if T == 0:
        raise ValueError(f"truncated_bptt_chunks: empty sequence (shape {tuple(x.shape)})")
    if targets is not None and targets.shape[time_axis] != T:
        raise ValueError(f"truncated_bptt_chunks: inputs have {T} steps on axis {time_axis}, "
                         f"targets {targets.shape[time_axis]}")
    for start in range(0, T, k):
        stop = min(start + k, T)
        yield start, _slice(x, start, stop, time_axis), _slice(targets, start, stop, time_axis)


def truncated_bptt(step_fn, inputs, k, state=None, targets=None, time_axis=1):
    """Run ``step_fn(x_chunk, y_chunk, state) -> (result, new_state)`` on consecutive chunks of k
    steps, carrying the state and detaching it before every chunk (the graph is cut there).

    ``step_fn`` does what a training step does (forward from ``state``, loss, backward, update) and
    returns any result (e.g. the loss) with the chunk's final state. Returns (results, final state).
    """
    results = []
    for _, xc, yc in truncated_bptt_chunks(inputs, k, targets, time_axis):
        result, state = step_fn(xc, yc, detach_state(state))
        results.append(result)
    return results, detach_state(state)


class TBPTT:
    """Truncated-BPTT training of a stateful sequence model, one long sequence at a time: a thin
    layer over a stateful ``Trainer`` (whose ``fit`` walks many such sequences, epoch by epoch).

    ``model(x_chunk, state) -> (output, new_state)``; ``loss_fn(output, y_chunk) -> loss``. Each chunk
    of ``k`` steps: zero grad, forward from the carried (detached) state, loss, backward, optional
    gradient clipping (``clip_grad_norm``; None or 0: none), optimizer step.

    >>> tbptt = TBPTT(model, opt, lambda out, y: F.cross_entropy(out.reshape(-1, V), y.reshape(-1)),
    ...               k=32, clip_grad_norm=5.0)
    >>> mean_loss, state = tbptt.train_sequence(x, y)       # x, y (N, T)
    """

    def __init__(self, model, optimizer, loss_fn, k, clip_grad_norm=None, time_axis=1):
        if int(k) < 1:
            raise ValueError(f"TBPTT: chunk length k must be >= 1, got {k}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.k, self.clip_grad_norm, self.time_axis = int(k), clip_grad_norm, time_axis
        self.trainer = Trainer(model, optimizer, clip_grad_norm=clip_grad_norm,
                               compute_loss=self._chunk_loss, stateful=True)

    def _chunk_loss(self, model, batch, state):
        x, y = batch
        out, state = model(x, state)
        return {"loss": self.loss_fn(out, y), "size": x.shape[self.time_axis]}, state

    def step(self, x, y, state):
        """One chunk (the Trainer's step): returns (loss as a float, new state)."""
        loss, _, _, state = self.trainer.train_step((x, y), state)
        return loss, state

    def train_sequence(self, x, y, state=None):
        """Walk (x, y) in chunks; returns (mean chunk loss weighted by chunk length, final state)."""
        total, steps = 0.0, 0
        for _, xc, yc in truncated_bptt_chunks(x, self.k, y, self.time_axis):
            loss, state = self.step(xc, yc, detach_state(state))
            n = xc.shape[self.time_axis]
            total += loss * n
            steps += n
        return total / steps, detach_state(state)
