"""The decomposition sentence shows the interval of the figure it prints (pure, no model)."""

from shapedemo.measure.wording import decomposition_lines


def _data(overhead: float, interval: list[float]) -> dict:
    return {
        "device": "CPU",
        "precision": "f32",
        "decomposition": {
            "dynamic_device_ms": {"median": 10.0},
            "static_at_dynamic_shape_device_ms": {"median": 12.0},
            "dynamic_overhead": overhead,
            "dynamic_overhead_interval": interval,
            "dynamic_call_shape": [4, 64],
            "dynamic_padding_fraction": 0.4,
            "padding_share": None,
        },
    }


def test_dynamic_faster_is_worded_with_the_interval_of_that_figure():
    line = decomposition_lines(_data(-0.2, [-0.3, -0.05]))
    assert "being dynamic is **20% faster** [5% to 30%]" in line


def test_dynamic_dearer_and_not_measurable():
    assert "being dynamic costs **+20%** [+5% to +30%]" in decomposition_lines(_data(0.2, [0.05, 0.3]))
    assert "nothing measurable" in decomposition_lines(_data(0.02, [-0.1, 0.1]))
