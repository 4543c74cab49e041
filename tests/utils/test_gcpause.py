"""paused_gc: no automatic collection inside, the collector's state restored after (also on errors)."""

import gc

import pytest

from bayesdl4.utils.gcpause import paused_gc


def test_paused_gc_restores_the_collector_state():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():  # nested: the inner exit leaves the outer pause in place
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), paused_gc():
        raise ValueError("inside")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # a collector disabled by the caller stays disabled
    finally:
        gc.enable()


def test_paused_gc_decorates():
    @paused_gc()
    def state():
        return gc.isenabled()

    assert state() is False and gc.isenabled()
