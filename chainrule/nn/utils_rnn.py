"""Helpers for batches of variable-length sequences: pad them, build masks, read each sequence's
last real step. The recurrent layers take ``lengths`` directly, so no packing is needed:

>>> x, lengths = pad_sequence([seq_a, seq_b, seq_c], batch_first=True)    # (3, T_max, D), (3,)
>>> out, h_n = gru(x, lengths=lengths)          # h_n[-1]: state after each sequence's last step
>>> last = last_step(out, lengths, batch_first=True)   # (3, H): the same for a one-way layer
"""
import numpy as np

from ..autograd import Tensor
from ..backend import array_namespace
from ..ops import basic as _basic

__all__ = ["pad_sequence", "lengths_to_mask", "last_step"]


def _arr(s):
    return s.data if isinstance(s, Tensor) else np.asarray(s)


def pad_sequence(sequences, batch_first=False, padding_value=0):
    """Stack sequences of shapes (T_i, *) into (T_max, N, *) ((N, T_max, *) with batch_first),
    filling with ``padding_value``. Returns (padded Tensor, lengths (N,) int64 array).

    Gradients flow back to sequences that require them."""
    if len(sequences) == 0:
        raise ValueError("pad_sequence: got an empty list of sequences")
    arrays = [_arr(s) for s in sequences]
    tails = {a.shape[1:] for a in arrays}
    if len(tails) > 1 or any(a.ndim == 0 for a in arrays):
        raise ValueError(f"pad_sequence: sequences must be (T_i, *) with the same trailing shape, "
                         f"got {[a.shape for a in arrays]}")
    lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
    if lengths.min() == 0:
        raise ValueError(f"pad_sequence: empty sequence at index {int(np.argmin(lengths))}")
    T = int(lengths.max())
    xp = array_namespace(arrays[0])
    dtype = xp.result_type(*arrays)
    if not any(isinstance(s, Tensor) and s.requires_grad for s in sequences):
        out = xp.full((len(arrays), T) + arrays[0].shape[1:], padding_value, dtype=dtype)
        for i, a in enumerate(arrays):
            out[i, :len(a)] = a
        if not batch_first:
            out = xp.ascontiguousarray(out.swapaxes(0, 1))
        return Tensor(out), lengths
    rows = []
    for s, a in zip(sequences, arrays):
        s = s if isinstance(s, Tensor) else Tensor(a)
        if len(a) < T:
            pad = Tensor(xp.full((T - len(a),) + a.shape[1:], padding_value, dtype=dtype))
            s = _basic.Concat.apply(s, pad, axis=0)
        rows.append(s)
    return _basic.Stack.apply(*rows, axis=0 if batch_first else 1), lengths


def lengths_to_mask(lengths, max_len=None, batch_first=True):
    """Boolean mask of the real steps: (N, T) (or (T, N) without batch_first), True where t < length."""
    lengths = np.asarray(_arr(lengths))
    T = int(lengths.max()) if max_len is None else int(max_len)
    m = np.arange(T)[None, :] < lengths[:, None]
    return m if batch_first else m.T


def last_step(output, lengths, batch_first=False):
    """Each sequence's output at its last real step: output (T, N, F) ((N, T, F) with batch_first),
    lengths (N,) -> (N, F). (For a bidirectional layer the backward half at that step has seen only
    the last element; use h_n for a summary of both directions.)"""
    lengths = np.asarray(_arr(lengths)).astype(np.int64)
    n = lengths.shape[0]
    shape = output.shape
    t_axis = 1 if batch_first else 0
    if len(shape) != 3 or shape[1 - t_axis] != n:
        raise ValueError(f"last_step: expected output {'(N, T, F)' if batch_first else '(T, N, F)'} "
                         f"with N = {n}, got {shape}")
    if n and (lengths.min() < 1 or lengths.max() > shape[t_axis]):
        raise ValueError(f"last_step: lengths must be in [1, {shape[t_axis]}], got "
                         f"min {lengths.min()}, max {lengths.max()}")
    rows = np.arange(n)
    idx = (rows, lengths - 1) if batch_first else (lengths - 1, rows)
    if not isinstance(output, Tensor):
        output = Tensor(output)
    return output[idx]
