"""Numba implementations of PyTensor's ``RFFTOp`` / ``IRFFTOp`` that numba can cache on disk.

PyTensor has no numba kernel for its FFT ops: its generic fallback runs ``Op.perform`` in an
object-mode block that closes over the Apply node, which makes every compiled graph holding an
FFT uncacheable (tens of seconds of numba compilation in *every* process). Here the object-mode
block calls module-level functions (``scipy.fft``), and a fixed cache key is registered, so a
graph compiled once is loaded from numba's cache afterwards. Importing this module registers the
implementations; results equal the ops' own ``perform`` (unnormalised inverse, as PyTensor's).
"""

import numba
import numpy as np
import scipy.fft
from pytensor.link.numba.dispatch.basic import (
    get_numba_type,
    numba_njit,
    register_funcify_and_cache_key,
)
from pytensor.tensor.fft import IRFFTOp, RFFTOp

__all__ = ["rfft_numpy", "irfft_numpy"]

_VERSION = "bayesdl4-fft-1"


def rfft_numpy(a, s):
    """``RFFTOp.perform``: real FFT over the axes after the first, (..., n // 2 + 1, 2)."""
    shape = tuple(int(v) for v in s)
    spectrum = scipy.fft.rfftn(a, s=shape, axes=tuple(range(a.ndim - len(shape), a.ndim)))
    out = np.empty((*spectrum.shape, 2), dtype=a.dtype)
    out[..., 0], out[..., 1] = spectrum.real, spectrum.imag
    return out


def irfft_numpy(a, s):
    """``IRFFTOp.perform``: unnormalised inverse real FFT of (..., m, 2) to real (..., *s)."""
    shape = tuple(int(v) for v in s)
    spectrum = a[..., 0] + 1j * a[..., 1]
    axes = tuple(range(spectrum.ndim - len(shape), spectrum.ndim))
    return scipy.fft.irfftn(spectrum, s=shape, axes=axes, norm="forward").astype(a.dtype)


@register_funcify_and_cache_key(RFFTOp)
def _numba_rfft(op, node, **kwargs):
    ret_type = get_numba_type(node.outputs[0].type)

    @numba_njit
    def rfft(a, s):
        with numba.objmode(ret=ret_type):
            ret = rfft_numpy(a, s)
        return ret

    return rfft, f"{_VERSION}-rfft-{node.inputs[0].type.ndim}"


@register_funcify_and_cache_key(IRFFTOp)
def _numba_irfft(op, node, **kwargs):
    ret_type = get_numba_type(node.outputs[0].type)

    @numba_njit
    def irfft(a, s):
        with numba.objmode(ret=ret_type):
            ret = irfft_numpy(a, s)
        return ret

    return irfft, f"{_VERSION}-irfft-{node.inputs[0].type.ndim}"
