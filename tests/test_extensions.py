"""fastnn's parameters beyond scikit-learn's MLP: class weights, validation
data, the validation loss curve and the early-stopping score."""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import recall_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network._base import LOSS_FUNCTIONS
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from fastnn import MLPClassifier, MLPRegressor


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _clf_data(n_classes=3, weights=None, n=200):
    return make_classification(
        n_samples=n, n_features=8, n_informative=5, n_classes=n_classes,
        weights=weights, random_state=0,
    )  # fmt: skip


def _params(solver, **extra):
    return dict(
        hidden_layer_sizes=(7,), solver=solver, max_iter=15, random_state=0,
        learning_rate_init=0.01, **extra,
    )  # fmt: skip


def _assert_same_weights(a, b):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)


# ---------------------------------------------------------------------------
# class_weight
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_class_weight_dict_is_sample_weight_of_the_class(solver, n_classes):
    X, y = _clf_data(n_classes)
    w = {c: 0.5 + c for c in range(n_classes)}
    ours = MLPClassifier(**_params(solver, class_weight=w)).fit(X, y)
    ref = MLPClassifier(**_params(solver))
    ref.fit(X, y, sample_weight=np.array([w[c] for c in y]))
    _assert_same_weights(ours, ref)
    assert ours.loss_ == ref.loss_


def test_class_weight_multiplies_sample_weight():
    X, y = _clf_data(2)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    w = {0: 3.0, 1: 0.5}
    ours = MLPClassifier(**_params("adam", class_weight=w))
    ours.fit(X, y, sample_weight=sw)
    ref = MLPClassifier(**_params("adam"))
    ref.fit(X, y, sample_weight=sw * np.array([w[c] for c in y]))
    _assert_same_weights(ours, ref)


def test_multilabel_class_weight_is_one_dict_per_output():
    X, y = _clf_data(2)
    Y = np.column_stack([y, X[:, 0] > 0]).astype(int)
    cw = [{0: 1.0, 1: 4.0}, {0: 2.0, 1: 1.0}]
    ours = MLPClassifier(**_params("adam", class_weight=cw)).fit(X, Y)
    ref = MLPClassifier(**_params("adam"))
    ref.fit(X, Y, sample_weight=compute_sample_weight(cw, Y))
    _assert_same_weights(ours, ref)


def test_balanced_class_weight_raises_minority_recall():
    X, y = _clf_data(2, weights=[0.95, 0.05], n=2000)
    Xtr, Xte, ytr, yte = train_test_split(X, y, stratify=y, random_state=0)
    recalls = {}
    for cw in (None, "balanced"):
        clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0,
                            class_weight=cw).fit(Xtr, ytr)  # fmt: skip
        recalls[cw] = recall_score(yte, clf.predict(Xte), pos_label=1)
    print("minority recall:", recalls)
    assert recalls["balanced"] > recalls[None] + 0.1


@pytest.mark.parametrize(
    "class_weight,match",
    [
        ({0: 1.0, 1: 1.0, 2: 1.0, 7: 2.0}, r"The classes, \[7\], in class_weight"),
        ({0: -1.0, 1: 1.0}, "Negative values in data passed to `sample_weight`"),
        ({0: "a", 1: 1.0}, "could not convert string to float"),
        ("heavy", "The 'class_weight' parameter of MLPClassifier must be"),
    ],
)
def test_bad_class_weight_raises_sklearns_error(class_weight, match):
    X, y = _clf_data(3)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(max_iter=2, class_weight=class_weight).fit(X, y)


def test_balanced_class_weight_is_refused_by_partial_fit():
    X, y = _clf_data(2)
    clf = MLPClassifier(class_weight="balanced")
    with pytest.raises(ValueError, match="class frequencies of a stream"):
        clf.partial_fit(X, y, classes=[0, 1])
    clf = MLPClassifier(class_weight={0: 1.0, 1: 2.0}, random_state=0)
    clf.partial_fit(X, y, classes=[0, 1])
    ref = MLPClassifier(random_state=0)
    ref.partial_fit(X, y, classes=[0, 1], sample_weight=1.0 + y)
    _assert_same_weights(clf, ref)


# ---------------------------------------------------------------------------
# Validation data, validation loss and scoring
# ---------------------------------------------------------------------------
def _split(task="clf"):
    if task == "clf":
        X, y = _clf_data(3, n=300)
    else:
        X, y = make_regression(n_samples=300, n_features=6, noise=5.0, random_state=0)
        y = y / y.std()
    return train_test_split(X, y, random_state=1)


def _early(cls, **extra):
    params = dict(
        hidden_layer_sizes=(8,), early_stopping=True, max_iter=40,
        n_iter_no_change=4, learning_rate_init=0.01, random_state=0,
    )  # fmt: skip
    return cls(**{**params, **extra})


@pytest.mark.parametrize("cls,task", [(MLPClassifier, "clf"), (MLPRegressor, "reg")])
def test_given_validation_data_replaces_the_split(cls, task):
    Xtr, Xval, ytr, yval = _split(task)
    est = _early(cls).fit(Xtr, ytr, X_val=Xval, y_val=yval)
    assert est.t_ == est.n_iter_ * len(ytr)  # every training row, every epoch
    # The restored weights score the best validation score on X_val.
    assert est.score(Xval, yval) == pytest.approx(est.best_validation_score_)
    assert len(est.validation_loss_curve_) == len(est.validation_scores_)


def test_sample_weight_val_weighs_the_validation_score():
    Xtr, Xval, ytr, yval = _split("clf")
    swv = np.where(yval == 0, 5.0, 1.0)
    est = _early(MLPClassifier, max_iter=3, n_iter_no_change=100)
    est.fit(Xtr, ytr, X_val=Xval, y_val=yval, sample_weight_val=swv)
    assert est.best_validation_score_ == pytest.approx(
        est.score(Xval, yval, sample_weight=swv)
    )
    assert est.best_validation_score_ != pytest.approx(est.score(Xval, yval))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"X_val": "X"}, "X_val is provided, but y_val was not provided."),
        ({"y_val": "y"}, "y_val is provided, but X_val was not provided."),
    ],
)
def test_validation_data_needs_both_halves(kwargs, message):
    Xtr, Xval, ytr, yval = _split("clf")
    given = {k: (Xval if v == "X" else yval) for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=message):
        _early(MLPClassifier).fit(Xtr, ytr, **given)


def test_validation_data_needs_early_stopping_and_a_stochastic_solver():
    Xtr, Xval, ytr, yval = _split("clf")
    with pytest.raises(ValueError, match="early_stopping is False"):
        MLPClassifier(max_iter=2).fit(Xtr, ytr, X_val=Xval, y_val=yval)
    est = MLPClassifier(solver="lbfgs", early_stopping=True, max_iter=2)
    with pytest.raises(ValueError, match="only the stochastic solvers"):
        est.fit(Xtr, ytr, X_val=Xval, y_val=yval)


def test_validation_data_is_checked():
    Xtr, Xval, ytr, yval = _split("clf")
    with pytest.raises(ValueError, match="`y_val` has classes not in"):
        _early(MLPClassifier).fit(Xtr, ytr, X_val=Xval, y_val=yval + 10)
    with pytest.raises(ValueError, match="features"):
        _early(MLPClassifier).fit(Xtr, ytr, X_val=Xval[:, :3], y_val=yval)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _early(MLPClassifier).fit(Xtr, ytr, X_val=Xval, y_val=yval[:-1])


@pytest.mark.parametrize("cls,task", [(MLPClassifier, "clf"), (MLPRegressor, "reg")])
def test_validation_loss_curve_is_sklearns_loss_of_each_epoch(cls, task):
    Xtr, Xval, ytr, yval = _split(task)
    est = _early(cls, max_iter=5, n_iter_no_change=100)
    est.fit(Xtr, ytr, X_val=Xval, y_val=yval)
    assert len(est.validation_loss_curve_) == est.n_iter_ == 5
    # The last epoch improved the score here, so its weights are the model's.
    assert est.validation_scores_[-1] == max(est.validation_scores_)
    out = est.predict_proba(Xval) if task == "clf" else est.predict(Xval)[:, None]
    if task == "clf":
        Y = np.eye(3)[yval]
        expected = LOSS_FUNCTIONS["log_loss"](Y, out)
    else:
        expected = LOSS_FUNCTIONS["squared_error"](yval[:, None], out)
    assert est.validation_loss_curve_[-1] == pytest.approx(expected, rel=1e-12)


def test_validation_loss_curve_with_the_internal_split_and_without():
    X, y = _clf_data(3)
    est = _early(MLPClassifier).fit(X, y)
    assert len(est.validation_loss_curve_) == est.n_iter_
    assert MLPClassifier(max_iter=3).fit(X, y).validation_loss_curve_ is None


def test_scoring_loss_stops_on_the_validation_loss():
    Xtr, Xval, ytr, yval = _split("clf")
    est = _early(MLPClassifier, scoring="loss").fit(Xtr, ytr, X_val=Xval, y_val=yval)
    np.testing.assert_allclose(
        est.validation_scores_, -np.array(est.validation_loss_curve_)
    )
    assert est.best_validation_score_ == -min(est.validation_loss_curve_)
    # the restored weights are those of the lowest validation loss
    proba = est.predict_proba(Xval)
    loss = LOSS_FUNCTIONS["log_loss"](np.eye(3)[yval], proba)
    assert loss == pytest.approx(min(est.validation_loss_curve_), rel=1e-12)


@pytest.mark.parametrize("scoring", ["balanced_accuracy", "neg_log_loss"])
def test_scoring_by_scorer_name(scoring):
    from sklearn.metrics import get_scorer

    Xtr, Xval, ytr, yval = _split("clf")
    est = _early(MLPClassifier, scoring=scoring).fit(Xtr, ytr, X_val=Xval, y_val=yval)
    best = get_scorer(scoring)(est, Xval, yval)
    assert best == pytest.approx(est.best_validation_score_)


def test_scoring_by_callable_on_the_regressor():
    Xtr, Xval, ytr, yval = _split("reg")
    calls = []

    def neg_max_error(est, X, y):
        calls.append(len(y))
        return -np.max(np.abs(est.predict(X) - y))

    est = _early(MLPRegressor, scoring=neg_max_error)
    est.fit(Xtr, ytr, X_val=Xval, y_val=yval)
    assert calls == [len(yval)] * est.n_iter_
    assert neg_max_error(est, Xval, yval) == pytest.approx(est.best_validation_score_)


def test_default_scoring_is_sklearns_score():
    X, y = _clf_data(3)
    a = _early(MLPClassifier).fit(X, y)
    b = _early(MLPClassifier, scoring="accuracy").fit(X, y)
    assert a.validation_scores_ == b.validation_scores_
    _assert_same_weights(a, b)


# ---------------------------------------------------------------------------
# Pipelines, searches, clone and pickle
# ---------------------------------------------------------------------------
def test_pipeline_transforms_validation_data():
    Xtr, Xval, ytr, yval = _split("clf")
    with sklearn.config_context(enable_metadata_routing=True):
        est = _early(MLPClassifier).set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("mlp", est)],
                        transform_input=["X_val"])  # fmt: skip
        pipe.fit(Xtr, ytr, X_val=Xval, y_val=yval)
    scaler = StandardScaler().fit(Xtr)
    ref = _early(MLPClassifier).fit(
        scaler.transform(Xtr), ytr, X_val=scaler.transform(Xval), y_val=yval
    )
    assert pipe[-1].validation_scores_ == ref.validation_scores_
    _assert_same_weights(pipe[-1], ref)


def test_grid_search_clone_and_pickle_the_new_parameters():
    X, y = _clf_data(2, weights=[0.8, 0.2])
    grid = {"class_weight": [None, "balanced"], "scoring": [None, "loss"]}
    base = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, early_stopping=True,
                         random_state=0)  # fmt: skip
    search = GridSearchCV(base, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    est = clone(search.best_estimator_)
    assert est.get_params()["class_weight"] == search.best_params_["class_weight"]
    fitted = search.best_estimator_
    again = pickle.loads(pickle.dumps(fitted))
    assert again.validation_loss_curve_ == fitted.validation_loss_curve_
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
