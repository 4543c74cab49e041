"""Graph keys: equal graphs give equal keys, any change of an op, constant or input type another."""

import numpy as np
import pytensor.tensor as pt

from bayesdl4.compiled import compile_function, graph_key, stats


def _graph(constant=2.0, op=pt.exp):
    x = pt.dvector("x")
    data = pt.dvector("counts")
    return [x, data], [op(x * constant).sum() + data.sum()]


def test_equal_graphs_have_equal_keys_and_changes_show():
    key = graph_key(*_graph())
    assert key == graph_key(*_graph())
    assert key[1]  # stable: valid on disk
    assert graph_key(*_graph(constant=3.0))[0] != key[0]
    assert graph_key(*_graph(op=pt.log))[0] != key[0]
    x, data = pt.dvector("x"), pt.lvector("counts")  # another input type
    assert graph_key([x, data], [pt.exp(x * 2.0).sum() + data.sum()])[0] != key[0]


def test_one_compiled_function_serves_data_of_any_size():
    inputs, outputs = _graph()
    fn = compile_function(inputs, outputs, mode="FAST_COMPILE")
    before = stats()["compiled"]
    again = compile_function(*_graph(), mode="FAST_COMPILE")
    assert again is fn and stats()["compiled"] == before
    for n in (1, 10, 1000):
        value = fn(np.zeros(3), np.ones(n))
        np.testing.assert_allclose(value, 3.0 + n)


def test_graphs_holding_none_constants_have_keys():
    """PyTensor puts NoneConst in some graphs (unknown dimensions of a SpecifyShape, e.g. in FFT
    gradients): they key like any constant."""
    def graph(shape):
        x = pt.dmatrix("x")
        return [x], [pt.specify_shape(x, shape).sum()]

    key = graph_key(*graph((None, 3)))
    assert key == graph_key(*graph((None, 3))) and key[1]
    assert graph_key(*graph((2, 3)))[0] != key[0]
