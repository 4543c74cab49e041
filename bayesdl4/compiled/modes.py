"""PyTensor modes used by bayesdl4 beyond the named ones, and BLAS threading."""

from pytensor.compile.mode import NUMBA, Mode
from pytensor.link.numba.linker import NumbaLinker

__all__ = ["NOGIL_NUMBA", "single_blas_thread"]


class NoGilNumbaLinker(NumbaLinker):
    """PyTensor's Numba linker whose compiled function releases the GIL while it runs.

    nutpie calls the log density of each chain from its own thread; with the GIL released, chains
    run in parallel on several cores. Same rewrites and generated code as ``mode="NUMBA"``.
    """

    def jit_compile(self, fn_and_cache):
        from pytensor.link.numba.dispatch.basic import numba_njit

        fn, cache_key = fn_and_cache
        return numba_njit(fn.py_func, final_function=True, cache=cache_key is not None, nogil=True)


NOGIL_NUMBA = Mode(linker=NoGilNumbaLinker(), optimizer=NUMBA.provided_optimizer)
NOGIL_NUMBA.bayesdl4_name = "NOGIL_NUMBA"


def single_blas_thread():
    """Context limiting BLAS to one thread: our graphs make many small BLAS calls, for which
    OpenBLAS's thread pool costs more than it gives (a joint-crab fit spent 0.17 s of 0.18 s in
    L-BFGS-B's BLAS calls on a busy two-core machine, 0.01 s with one thread), and nutpie's chains
    already run in parallel threads."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
