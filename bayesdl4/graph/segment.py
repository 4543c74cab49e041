"""Sparse, segmented products on tensors: the block-sparse response of many spectra in one op.

``segment_dot(x, structure)`` computes ``out[b] = sum_j weights[offsets[b] + j] * x[starts[b] + j]``
over the band of output ``b`` (`SegmentStructure`: banded rows, zeros inside a band kept). The energy
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

_VERSION = "bayesdl4-segment-dot-2"


@dataclass
class SegmentStructure:
    """Banded rows of a sparse ``(n_out, n_in)`` matrix and of its transpose (numpy).

    Row ``b`` holds ``weights[offsets[b]:offsets[b + 1]]`` for the inputs ``starts[b]``,
    ``starts[b] + 1``, ...: the band from a row's first to its last nonzero, zeros inside it
    included. Energy responses are banded, so this stores little more than the nonzeros, and the
    products read ``x`` contiguously (vectorised loops instead of gathers).
    """

    offsets: np.ndarray
    starts: np.ndarray
    weights: np.ndarray
    offsets_t: np.ndarray
    starts_t: np.ndarray
    weights_t: np.ndarray

    def arrays(self, prefix):
        """The six arrays as ``{f"{prefix}{name}": array}`` (graph inputs)."""
        return {f"{prefix}{name}": getattr(self, name) for name in _NAMES}


_NAMES = ("offsets", "starts", "weights", "offsets_t", "starts_t", "weights_t")


def _banded(out_index, in_index, weights, n_out):
    """Banded rows (offsets, starts, weights) of the entries ``weights`` at ``(out_index, in_index)``."""
    order = np.lexsort((in_index, out_index))
    out_index, in_index, weights = out_index[order], in_index[order], weights[order]
    counts = np.bincount(out_index, minlength=n_out)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    starts = np.zeros(n_out, dtype=np.int64)
    widths = np.zeros(n_out, dtype=np.int64)
    nonempty = counts > 0
    starts[nonempty] = in_index[bounds[:-1][nonempty]]
    widths[nonempty] = in_index[bounds[1:][nonempty] - 1] - starts[nonempty] + 1
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    band = np.zeros(int(offsets[-1]))
    np.add.at(band, offsets[out_index] + in_index - starts[out_index], weights)
    return offsets, starts, band


def segment_structure(out_index, in_index, weights, n_out, n_in):
    """Structure of the sparse matrix with entries ``weights`` at ``(out_index, in_index)``
    (repeated entries add up)."""
    out_index = np.asarray(out_index, dtype=np.int64)
    in_index = np.asarray(in_index, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    return SegmentStructure(*_banded(out_index, in_index, weights, n_out),
                            *_banded(in_index, out_index, weights, n_in))


def segment_sums(segment, n_segments):
    """Structure summing inputs into ``n_segments`` groups (``segment[i]`` = group of input ``i``)."""
    segment = np.asarray(segment, dtype=np.int64)
    return segment_structure(segment, np.arange(segment.size), np.ones(segment.size), n_segments,
                             segment.size)


def _product(x, offsets, starts, weights):
    n = offsets.shape[0] - 1
    rows = np.repeat(np.arange(n), np.diff(offsets))
    columns = np.repeat(starts, np.diff(offsets)) + (np.arange(weights.size) - np.repeat(offsets[:-1], np.diff(offsets)))
    return np.bincount(rows, weights=weights * x[columns], minlength=n).astype(np.float64)


class SegmentDot(Op):
    """``out[b] = sum_j weights[offsets[b] + j] * x[starts[b] + j]`` over row ``b``'s band.

    Inputs: ``x``, the banded triple, then the transposed triple (used by the gradient).
    """

    __props__ = ()

    def make_node(self, x, offsets, starts, weights, offsets_t, starts_t, weights_t):
        x = pt.as_tensor_variable(x)
        ints = [pt.as_tensor_variable(a) for a in (offsets, starts, offsets_t, starts_t)]
        floats = [pt.as_tensor_variable(a) for a in (weights, weights_t)]
        if x.type.ndim != 1:
            raise TypeError("SegmentDot: x must be a vector")
        inputs = [x, ints[0], ints[1], floats[0], ints[2], ints[3], floats[1]]
        return Apply(self, inputs, [pt.dvector()])

    def perform(self, node, inputs, outputs):
        x, offsets, starts, weights = inputs[:4]
        outputs[0][0] = _product(np.asarray(x, dtype=np.float64), offsets, starts, weights)

    def connection_pattern(self, node):
        return [[True]] + [[False]] * 6

    def pullback(self, inputs, outputs, output_grads):
        x, offsets, starts, weights, offsets_t, starts_t, weights_t = inputs
        grad_x = self(output_grads[0], offsets_t, starts_t, weights_t, offsets, starts, weights)
        from pytensor.gradient import disconnected_type

        return [grad_x.astype(x.dtype)] + [disconnected_type() for _ in range(6)]

    def infer_shape(self, node, shapes):
        return [(node.inputs[1].shape[0] - 1,)]


_segment_dot = SegmentDot()


def segment_dot(x, inputs, prefix):
    """``SegmentDot`` of ``x`` with the structure held in ``inputs`` under ``prefix`` (tensors)."""
    return _segment_dot(x, *(inputs[f"{prefix}{name}"] for name in _NAMES))


@register_funcify_and_cache_key(SegmentDot)
def _numba_segment_dot(op, node, **kwargs):
    @numba_njit
    def segment_dot_kernel(x, offsets, starts, weights, offsets_t, starts_t, weights_t):
        n = offsets.shape[0] - 1
        out = np.zeros(n, dtype=np.float64)
        for b in range(n):
            first, start = offsets[b], starts[b]
            acc = 0.0
            for j in range(offsets[b + 1] - first):
                acc += weights[first + j] * x[start + j]
            out[b] = acc
        return out

    return segment_dot_kernel, _VERSION
