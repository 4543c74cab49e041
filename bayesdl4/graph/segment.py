"""Sparse, segmented products on tensors: the block-sparse response of many spectra in one op.

``segment_dot(x, structure)`` computes ``out[b] = sum_k weights[k] * x[indices[k]]`` over the
nonzeros ``k`` of output ``b`` (``indptr[b] <= k < indptr[b + 1]``, CSR by output). The energy
responses of all spectra of a group are one such structure (output: fitted reco bins of every
dataset, input: kept true-energy rows of every dataset), so the graph holds one op whatever the
number of datasets, and the arrays are graph inputs (data), not constants. Per-dataset sums of
per-bin terms are the same op with unit weights.

The gradient with respect to ``x`` is the transposed product, precomputed in numpy and passed
as three more inputs. A Numba kernel with a fixed cache key is registered, so compiled graphs
holding it stay cacheable on disk.
"""

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key

__all__ = ["SegmentStructure", "SegmentDot", "segment_dot", "segment_structure", "segment_sums"]

_VERSION = "bayesdl4-segment-dot-1"


@dataclass
class SegmentStructure:
    """CSR arrays of a sparse ``(n_out, n_in)`` matrix and of its transpose (numpy)."""

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    indptr_t: np.ndarray
    indices_t: np.ndarray
    weights_t: np.ndarray

    def arrays(self, prefix):
        """The six arrays as ``{f"{prefix}{name}": array}`` (graph inputs)."""
        return {f"{prefix}{name}": getattr(self, name) for name in
                ("indptr", "indices", "weights", "indptr_t", "indices_t", "weights_t")}


def segment_structure(out_index, in_index, weights, n_out, n_in):
    """Structure of the sparse matrix with entries ``weights`` at ``(out_index, in_index)``."""
    out_index = np.asarray(out_index, dtype=np.int64)
    in_index = np.asarray(in_index, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    order = np.lexsort((in_index, out_index))
    order_t = np.lexsort((out_index, in_index))
    return SegmentStructure(
        indptr=_indptr(out_index[order], n_out),
        indices=in_index[order],
        weights=weights[order],
        indptr_t=_indptr(in_index[order_t], n_in),
        indices_t=out_index[order_t],
        weights_t=weights[order_t],
    )


def segment_sums(segment, n_segments):
    """Structure summing inputs into ``n_segments`` groups (``segment[i]`` = group of input ``i``)."""
    segment = np.asarray(segment, dtype=np.int64)
    return segment_structure(segment, np.arange(segment.size), np.ones(segment.size), n_segments,
                             segment.size)


def _indptr(sorted_index, n):
    counts = np.bincount(sorted_index, minlength=n) if sorted_index.size else np.zeros(n, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _product(x, indptr, indices, weights):
    n = indptr.shape[0] - 1
    rows = np.repeat(np.arange(n), np.diff(indptr))
    return np.bincount(rows, weights=weights * x[indices], minlength=n).astype(np.float64)


class SegmentDot(Op):
    """``out[b] = sum_{indptr[b] <= k < indptr[b+1]} weights[k] * x[indices[k]]``.

    Inputs: ``x``, the CSR triple, then the transposed triple (used by the gradient).
    """

    __props__ = ()

    def make_node(self, x, indptr, indices, weights, indptr_t, indices_t, weights_t):
        x = pt.as_tensor_variable(x)
        ints = [pt.as_tensor_variable(a) for a in (indptr, indices, indptr_t, indices_t)]
        floats = [pt.as_tensor_variable(a) for a in (weights, weights_t)]
        if x.type.ndim != 1:
            raise TypeError("SegmentDot: x must be a vector")
        inputs = [x, ints[0], ints[1], floats[0], ints[2], ints[3], floats[1]]
        return Apply(self, inputs, [pt.dvector()])

    def perform(self, node, inputs, outputs):
        x, indptr, indices, weights = inputs[:4]
        outputs[0][0] = _product(np.asarray(x, dtype=np.float64), indptr, indices, weights)

    def connection_pattern(self, node):
        return [[True]] + [[False]] * 6

    def pullback(self, inputs, outputs, output_grads):
        x, indptr, indices, weights, indptr_t, indices_t, weights_t = inputs
        grad_x = self(output_grads[0], indptr_t, indices_t, weights_t, indptr, indices, weights)
        from pytensor.gradient import disconnected_type

        return [grad_x.astype(x.dtype)] + [disconnected_type() for _ in range(6)]

    def infer_shape(self, node, shapes):
        return [(node.inputs[1].shape[0] - 1,)]


_segment_dot = SegmentDot()


def segment_dot(x, inputs, prefix):
    """``SegmentDot`` of ``x`` with the structure held in ``inputs`` under ``prefix`` (tensors)."""
    names = ("indptr", "indices", "weights", "indptr_t", "indices_t", "weights_t")
    return _segment_dot(x, *(inputs[f"{prefix}{name}"] for name in names))


@register_funcify_and_cache_key(SegmentDot)
def _numba_segment_dot(op, node, **kwargs):
    @numba_njit
    def segment_dot_kernel(x, indptr, indices, weights, indptr_t, indices_t, weights_t):
        n = indptr.shape[0] - 1
        out = np.zeros(n, dtype=np.float64)
        for b in range(n):
            acc = 0.0
            for k in range(indptr[b], indptr[b + 1]):
                acc += weights[k] * x[indices[k]]
            out[b] = acc
        return out

    return segment_dot_kernel, _VERSION
