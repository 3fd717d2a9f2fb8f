"""fastnn: Numba-JIT dense neural networks behind scikit-learn's MLP API.

Swap ``from sklearn.neural_network import MLPClassifier`` for
``from fastnn import MLPClassifier``: same parameters, attributes and
behaviour, with each training epoch run by one compiled kernel call.
"""

from ._mlp import MLPClassifier, MLPRegressor

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "MLPRegressor", "LossCurveDisplay", "to_onnx"]


def __getattr__(name):
    """Import the optional-extra helpers lazily (matplotlib, skl2onnx)."""
    if name == "LossCurveDisplay":
        from .display import LossCurveDisplay

        return LossCurveDisplay
    if name == "to_onnx":
        from .interop import to_onnx

        return to_onnx
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")
