"""fastnn: Numba-JIT dense neural networks behind scikit-learn's MLP API.

Swap ``from sklearn.neural_network import MLPClassifier`` for
``from fastnn import MLPClassifier``: same parameters, attributes and
behaviour, with each training epoch run by one compiled kernel call.

The names below load on first use, so that the package build can import
the kernels (:mod:`fastnn._precompile`) with numba, numpy and scipy alone.
"""

import importlib

__version__ = "0.1.0"

__all__ = ["MLPClassifier", "MLPRegressor", "LossCurveDisplay", "to_onnx"]

# Public name -> the module that defines it; display and interop need the
# optional extras (matplotlib, skl2onnx).
_LAZY = {
    "MLPClassifier": "._mlp",
    "MLPRegressor": "._mlp",
    "LossCurveDisplay": ".display",
    "to_onnx": ".interop",
}


def __getattr__(name):
    """Import a public name's module on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'fastnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
