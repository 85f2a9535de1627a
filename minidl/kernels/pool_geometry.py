"""The output-size formula of 2-D pooling (see `pooling.py` for the geometry)."""


def output_size(size, kernel, stride, padding):
    """Number of window positions along one axis: floor((size + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1
