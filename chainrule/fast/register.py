"""Plugs every fast piece in: importing this module registers each replacement with
``chainrule.fast.register`` (``chainrule/__init__.py`` imports it once). One line per piece, the
reference it replaces on the left."""
from .. import fast
from ..nn import container as _container
from ..ops import conv as _conv
from ..ops import pool as _pool
from . import conv, fusion, pool

fast.register(_conv.Conv, conv.FastConv)                  # batch-innermost layout, small maps
fast.register(_pool.MaxPool2d, pool.FastMaxPool2d)        # 2x2 windows on their corners
fast.register(_container.run_layers, fusion.run)          # Sequential's layer fusions
