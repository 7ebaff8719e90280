"""Plugs every fast piece in: importing this module registers each replacement with
``chainrule.fast.register`` (``chainrule/__init__.py`` imports it once). One line per piece, the
reference it replaces on the left."""
from .. import fast
from ..nn import container as _container
from ..ops import conv as _conv
from ..ops import pool as _pool
from ..ops import recurrent as _rec
from . import conv, fusion, pool, recurrent
from .tuning import get_num_threads, set_num_threads  # noqa: F401  (chainrule re-exports them)

fast.register(_conv.Conv, conv.FastConv)                  # batch-innermost layout, small maps
fast.register(_pool.MaxPool2d, pool.FastMaxPool2d)        # 2x2 windows on their corners
fast.register(_container.run_layers, fusion.run)          # Sequential's layer fusions
fast.register(_rec.RNNLayer, recurrent.FastRNNLayer)      # pooled buffers, embedding fusion
fast.register(_rec.LSTMLayer, recurrent.FastLSTMLayer)
fast.register(_rec.GRULayer, recurrent.FastGRULayer)
