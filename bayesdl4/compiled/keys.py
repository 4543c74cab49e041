"""Keys of graphs: what a compiled function depends on, read off the graph itself.

`graph_key` walks the graph from its inputs to its outputs in topological order and records
each node's op (class and ``__props__``), where its inputs come from (a graph input by position
and type, an earlier node's output, or a constant by dtype, shape and a digest of its bytes). Two
graphs with the same key compute the same function of their inputs, so the key is all a cache
of compiled functions needs: data that enter as inputs (counts, responses, index arrays) are not
in it, and no reflection over model objects is needed.
"""

import hashlib

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import io_toposort

__all__ = ["graph_key", "array_digest"]


def array_digest(array):
    """Digest of an array's dtype, shape and bytes, the same in every process."""
    array = np.ascontiguousarray(array)
    digest = hashlib.blake2b(array.view(np.uint8).reshape(-1) if array.size else b"", digest_size=16)
    return f"{array.dtype.str}{array.shape}{digest.hexdigest()}"


def _type_key(type_):
    return repr(type_)


def _value_repr(value):
    if isinstance(value, np.ndarray):
        return array_digest(value)
    if isinstance(value, tuple | list):
        return "(" + ",".join(_value_repr(v) for v in value) + ")"
    return repr(value)


def _op_key(op):
    props = getattr(op, "__props__", None)
    if props is None:
        return f"{type(op).__module__}.{type(op).__qualname__}:{op!r}"
    values = ",".join(f"{name}={_value_repr(getattr(op, name))}" for name in props)
    return f"{type(op).__module__}.{type(op).__qualname__}({values})"


def graph_key(inputs, outputs):
    """``(digest, stable)`` of the function ``inputs -> outputs``.

    ``stable`` is False when part of the graph is known only by identity (an object whose repr
    names a memory address): such a key is valid within the process only (not on disk).
    """
    ids = {var: f"i{k}:{_type_key(var.type)}" for k, var in enumerate(inputs)}
    parts = []
    stable = True

    def ref(var):
        nonlocal stable
        if var in ids:
            return ids[var]
        if isinstance(var, Constant):
            if var.data is None:  # NoneConst (e.g. an unknown dimension of a SpecifyShape)
                return "c:None"
            return f"c:{_type_key(var.type)}:{array_digest(np.asarray(var.data))}"
        if isinstance(var, SharedVariable):
            return f"s:{_type_key(var.type)}:{array_digest(np.asarray(var.get_value(borrow=True)))}"
        stable = False
        return f"r:{id(var)}"

    for node in io_toposort(list(inputs), list(outputs)):
        op = _op_key(node.op)
        if " at 0x" in op:
            stable = False
        parts.append(f"{op}<-{'|'.join(ref(v) for v in node.inputs)}")
        for k, out in enumerate(node.outputs):
            ids[out] = f"n{len(parts) - 1}.{k}"
    parts.append("out:" + "|".join(ref(v) for v in outputs))
    digest = hashlib.blake2b("\n".join(parts).encode(), digest_size=20).hexdigest()
    return digest, stable
