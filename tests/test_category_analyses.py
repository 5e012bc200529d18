"""Lado & Dobs' analyses: metric consistency, decoding and lesions, against SciPy / scikit-learn
and models whose lesion effects are known by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.stats
import torch
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from torch import nn

import unitsel
from ingest.lesions import ingest_lesions, lesion_layer
from tests.layers import load
from unitsel import Transaction
from unitsel.analyses.consistency import run_consistency
from unitsel.analyses.decoding import run_decoding
from unitsel.errors import InputError

COLUMNS = {"fsi": "fsi", "dprime": "dprime", "ranksum": "ranksum_z", "ttest": "ttest_min_t"}


def face_layer(seed: int, n_units: int = 30, n: int = 90) -> tuple[np.ndarray, list[str]]:
    """ReLU units; the first five respond more to faces, with graded strength."""
    rng = np.random.default_rng(seed)
    labels = [("face", "body", "place")[i % 3] for i in range(n)]
    acts = np.maximum(rng.normal(size=(n, n_units)), 0)
    is_face = np.array(labels) == "face"
    acts[is_face, :5] += np.linspace(0.5, 3, 5)
    return acts.astype(np.float32), labels


def unit_metrics(root: Path) -> pl.DataFrame:
    with unitsel.connection(root) as con:
        return con.sql("SELECT * FROM unit_category_selectivity('m', 's', 'l', 'none', "
                       "'face')").pl()


def test_consistency_matches_scipy_spearman(root: Path) -> None:
    acts, labels = face_layer(1)
    load(root, acts, labels)
    drop = np.random.default_rng(2).random(acts.shape[1])
    with Transaction(root) as tx:
        tx.write(pl.DataFrame({"model_id": "m", "stimulus_set": "held-out", "layer": "l",
                               "task": "probe:face", "unit": range(acts.shape[1]),
                               "baseline": 1.0, "lesioned": 1.0 - drop, "n_stimuli": 10}),
                 "lesions")
    with Transaction(root) as tx:
        result = run_consistency(tx, "m", "s", "face")
    units = unit_metrics(root)
    values = {name: units[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
              for name, column in COLUMNS.items()}
    values["lesion:probe:face"] = drop
    assert result.height == len(values) * (len(values) - 1) // 2
    for row in result.iter_rows(named=True):
        a, b = values[row["metric_a"]], values[row["metric_b"]]
        both = ~np.isnan(a) & ~np.isnan(b)
        want = scipy.stats.spearmanr(a[both], b[both]).statistic
        assert row["spearman_rho"] == pytest.approx(want, abs=1e-12), row
        assert row["n_units"] == both.sum()
    with Transaction(root) as tx:
        run_consistency(tx, "m", "s", "face")  # a re-run replaces its rows
    with unitsel.connection(root) as con:
        assert con.sql("SELECT count(*) FROM metric_consistency").fetchone() == (result.height,)
        layer = con.sql("SELECT n_pairs, mean_rho FROM layer_metric_consistency").fetchone()
    four = result.filter(~pl.col("metric_a").str.starts_with("lesion")
                         & ~pl.col("metric_b").str.starts_with("lesion"))
    assert layer == (6, pytest.approx(four["spearman_rho"].mean()))


def test_decoding_matches_scikit_learn(root: Path) -> None:
    acts, labels = face_layer(3)
    load(root, acts, labels)
    units = unit_metrics(root)
    n = min(int(units[f"is_{m}_selective"].sum()) for m in COLUMNS)
    with Transaction(root, progress=False) as tx:
        result = run_decoding(tx, "m", "s", "face", "l", "none", folds=5)
    assert set(result["n_units"]) == {n} and n > 0
    y = np.array(labels)
    for row in result.filter(pl.col("cv") == "k-fold").iter_rows(named=True):
        if row["metric"] == "random":
            continue
        column = COLUMNS[row["metric"]]
        top = units.sort([column, "unit"], descending=[True, False], nulls_last=True)["unit"][:n]
        scores = cross_val_score(make_pipeline(StandardScaler(), LinearSVC(max_iter=20_000)),
                                 acts[:, top.to_list()], y,
                                 cv=StratifiedKFold(5, shuffle=True, random_state=0))
        low, high = scipy.stats.t.interval(0.95, len(scores) - 1, loc=scores.mean(),
                                           scale=scipy.stats.sem(scores))
        assert row["accuracy"] == pytest.approx(scores.mean())
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
        assert row["chance"] == pytest.approx(1 / 3)
    loo = result.filter(pl.col("cv") == "leave-one-out")
    assert set(loo["n_folds"]) == {len(labels)} and loo.height == 5


def test_decoding_needs_selected_units(root: Path) -> None:
    rng = np.random.default_rng(4)
    load(root, rng.random((40, 6)).astype(np.float32), ["face", "rest"] * 20)
    with pytest.raises(InputError, match="selects no unit"), Transaction(root) as tx:
        run_decoding(tx, "m", "s", "face", "l", "none")
    for _ in range(2):  # a re-run replaces its rows
        with Transaction(root, progress=False) as tx:
            result = run_decoding(tx, "m", "s", "face", "l", "none", n_units=2, folds=4,
                                  cv=("k-fold",))
    assert set(result["n_units"]) == {2}
    with unitsel.connection(root) as con:
        assert con.sql("SELECT count(*) FROM decoding").fetchone() == (result.height,)


class Channels(nn.Module):
    """x -> 3 channels c * x (1x1 conv) -> ReLU -> spatial mean -> output 0 = sum of
    w_c * channel c, output 1 = 1.1: lesioning channel c removes w_c * c * mean(relu(x))."""

    weights = (1.0, 2.0, 0.0)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)  # in place: the lesion must survive it
        self.readout = nn.Linear(3, 2)
        with torch.no_grad():
            self.conv.weight[:] = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1)
            self.readout.weight[:] = torch.tensor([list(self.weights), [0.0, 0.0, 0.0]])
            self.readout.bias[:] = torch.tensor([0.0, 1.1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.relu(self.conv(x)).mean(dim=(2, 3)))  # type: ignore[no-any-return]


def test_lesion_effect_is_known_by_construction() -> None:
    inputs = torch.randn(16, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    baseline, lesioned = lesion_layer(Channels(), inputs, "conv",
                                      lambda out: float(out[:, 0].mean()), progress=False)
    relu_mean = float(inputs.clamp(min=0).mean())
    contribution = np.array([w * c * relu_mean for w, c in zip(Channels.weights, (1, 2, 3),
                                                                strict=True)])
    assert baseline == pytest.approx(contribution.sum(), rel=1e-6)
    np.testing.assert_allclose(baseline - lesioned, contribution, rtol=1e-5, atol=1e-7)


def test_accuracy_task_written_and_replaced(root: Path) -> None:
    """Inputs 0.1k (k = 1..6): output 0 = 0.1k * (1*1 + 2*2 + 0*3) = 0.5k beats output 1 = 1.1
    for k >= 3. Without channel 1 it is 0.1k (never); without channel 0, 0.4k (k >= 3);
    channel 2 never matters."""
    inputs = torch.full((6, 1, 2, 2), 0.1) * torch.arange(1, 7).view(6, 1, 1, 1)
    labels = pl.DataFrame({"stimulus": range(6), "label": ["a"] * 6})
    for _ in range(2):
        with unitsel.Transaction(root, progress=False) as tx:
            frame = ingest_lesions(tx, Channels(), inputs, labels, model_id="m",
                                   stimulus_set="s", layer="conv", category="a",
                                   task="accuracy", class_names=["a", "b"])
    got = dict(zip(frame["unit"], frame["lesioned"], strict=True))
    assert frame["baseline"][0] == pytest.approx(4 / 6)
    assert got == {0: pytest.approx(4 / 6), 1: 0.0, 2: pytest.approx(4 / 6)}
    with unitsel.connection(root) as con:
        assert con.sql("SELECT count(*), any_value(task) FROM lesions").fetchone() == (
            3, "accuracy:a")
