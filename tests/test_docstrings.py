"""numpydoc validation of fastnn's public API (everything in ``fastnn.__all__``).

Each public class, function and method that fastnn defines (methods inherited
unchanged from scikit-learn are scikit-learn's business) must pass numpydoc's
validation, and every array-valued parameter, attribute or return value must
state its shape.
"""

import inspect

import pytest

import fastnn

validate = pytest.importorskip("numpydoc.validate")
docscrape = pytest.importorskip("numpydoc.docscrape")

# Checks not enforced: the summary may start on the line of the opening quotes
# (GL01, ruff's numpy convention allows it); a single return value may be named,
# as in scikit-learn's ``self : object`` (RT02); the Extended Summary, See Also
# and Examples sections are optional (ES01, SA01, EX01).
IGNORED = {"GL01", "RT02", "ES01", "SA01", "EX01"}
ARRAY_WORDS = ("array", "ndarray", "matrix")


def _public_objects():
    """Import paths of the public API and of the methods fastnn defines."""
    paths = []
    for name in fastnn.__all__:
        obj = getattr(fastnn, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        paths.append(f"fastnn.{name}")
        if not inspect.isclass(obj):
            continue
        for attr, member in inspect.getmembers(obj):
            if attr.startswith("_"):
                continue
            function = member.fget if isinstance(member, property) else member
            module = getattr(function, "__module__", None) or ""
            if module.startswith("fastnn") and callable(function):
                paths.append(f"fastnn.{name}.{attr}")
    return paths


PUBLIC = _public_objects()


def test_public_api_is_not_empty():
    assert "fastnn.MLPClassifier" in PUBLIC
    assert "fastnn.MLPRegressor" in PUBLIC
    assert "fastnn.LossCurveDisplay.from_estimator" in PUBLIC


@pytest.mark.parametrize("path", PUBLIC)
def test_numpydoc_validation(path):
    result = validate.validate(path)
    errors = [
        f"{code}: {message}"
        for code, message in result["errors"]
        if code not in IGNORED
    ]
    assert errors == [], f"{path}:\n" + "\n".join(errors)


@pytest.mark.parametrize("path", PUBLIC)
def test_array_entries_state_their_shape(path):
    obj = fastnn
    for attr in path.split(".")[1:]:
        obj = getattr(obj, attr)
    doc = docscrape.NumpyDocString(inspect.getdoc(obj) or "")
    missing = [
        f"{section}: {entry.name} : {entry.type}"
        for section in ("Parameters", "Attributes", "Returns", "Yields")
        for entry in doc[section]
        if any(word in entry.type for word in ARRAY_WORDS) and "shape" not in entry.type
    ]
    assert missing == [], f"{path} documents arrays without a shape: {missing}"
