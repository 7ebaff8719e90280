"""Differentiable functions on arrays, one ``Function`` class per op, grouped by topic: basic
(arithmetic with broadcasting, matmul, the fused linear, reductions, shape and indexing), activation,
loss, norm (dropout, batch and local response norm), conv, pool, recurrent, embedding.

Ops see arrays only and take their array module from them (``xp = array_namespace(x)``); Tensors
reach them through ``Op.apply`` (``chainrule.autograd``), the Tensor methods (``chainrule.tensor_api``)
and the functional forms (``chainrule.nn.functional``).
"""
