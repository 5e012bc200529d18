"""Lado & Dobs' category selectivity in SQL against SciPy / numpy, and the p-value macros."""

from __future__ import annotations

import warnings
from pathlib import Path

import duckdb
import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unitsel
from tests.layers import layers, load

FLOATS = ["fsi", "dprime", "ranksum_z", "ranksum_p", "ttest_min_t", "ttest_max_p_fdr",
          "mean_target", "mean_rest"]
FLAGS = ["is_fsi_selective", "is_dprime_selective", "is_ranksum_selective",
         "is_ttest_selective"]


def _fsi(r_t: float, r_n: float) -> float | None:
    if r_t > 0 > r_n:
        return 1.0
    if r_t < 0 < r_n:
        return -1.0
    if r_t >= 0 and r_n >= 0 and r_t + r_n > 0:
        return (r_t - r_n) / (r_t + r_n)
    return None


def _ranksum_z(target: np.ndarray, rest: np.ndarray) -> float | None:
    """Mann-Whitney z with tie and continuity corrections, from scipy's rankdata."""
    both = np.concatenate([target, rest])
    n_t, n = len(target), len(both)
    _, ties = np.unique(both, return_counts=True)
    var = n_t * (n - n_t) / 12 * ((n + 1) - (ties**3 - ties).sum() / (n * (n - 1)))
    if var <= 0:
        return None
    u = scipy.stats.rankdata(both)[:n_t].sum() - n_t * (n_t + 1) / 2
    return float((u - n_t * (n - n_t) / 2 - 0.5) / np.sqrt(var))


def reference(acts: np.ndarray, labels: list[str], category: str,
              welch: bool = False) -> list[dict[str, object]]:
    """Each metric from its definition, unit by unit; t-test FDR across units per label."""
    labels_arr = np.array(labels)
    target_rows = labels_arr == category
    others = sorted(set(labels) - {category})
    rows: list[dict[str, object]] = []
    t_values = np.full((acts.shape[1], len(others)), np.nan)
    p_values = np.full_like(t_values, np.nan)
    for u in range(acts.shape[1]):
        a = acts[:, u].astype(np.float64)
        target, rest = a[target_rows], a[~target_rows]
        var = target.var(ddof=1) + rest.var(ddof=1) if min(len(target), len(rest)) > 1 else 0
        dprime = (target.mean() - rest.mean()) / np.sqrt(var / 2) if var > 0 else None
        z = _ranksum_z(target, rest)
        p = None
        if z is not None:
            p = scipy.stats.mannwhitneyu(target, rest, alternative="greater",
                                         method="asymptotic").pvalue
        for j, other in enumerate(others):
            b = a[labels_arr == other]
            if len(target) > 1 and len(b) > 1 and np.var(target) + np.var(b) > 0:
                with warnings.catch_warnings():
                    # Groups of nearly equal float32 activations are inputs this test means
                    # to cover (rounded ties); SciPy warns that their variance loses digits,
                    # and its t is still the reference the SQL must match to 1e-6.
                    warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
                    test = scipy.stats.ttest_ind(target, b, equal_var=not welch)
                t_values[u, j], p_values[u, j] = test.statistic, test.pvalue
        fsi = _fsi(float(target.mean()), float(rest.mean()))
        rows.append({"unit": u, "mean_target": target.mean(), "mean_rest": rest.mean(),
                     "fsi": fsi, "is_fsi_selective": fsi is not None and fsi > 0.3,
                     "dprime": dprime, "is_dprime_selective": dprime is not None and dprime > 0.65,
                     "ranksum_z": z, "ranksum_p": p,
                     "is_ranksum_selective": p is not None and p < 0.001})
    q_values = np.full_like(p_values, np.nan)
    for j in range(len(others)):
        tested = ~np.isnan(p_values[:, j])
        if tested.any():
            q_values[tested, j] = scipy.stats.false_discovery_control(p_values[tested, j])
    for u, row in enumerate(rows):
        t, q = t_values[u], q_values[u]
        row["ttest_min_t"] = None if np.isnan(t).all() else float(np.nanmin(t))
        row["ttest_max_p_fdr"] = None if np.isnan(q).all() else float(np.nanmax(q))
        row["is_ttest_selective"] = bool(len(others) and np.all((q < 0.05) & (t > 0)))
    return rows


def sql_rows(root: Path, category: str = "c0", welch: bool = False) -> list[dict[str, object]]:
    with unitsel.connection(root) as con:
        return con.sql(f"""SELECT * FROM unit_category_selectivity(
            'm', 's', 'l', 'none', '{category}', welch := {str(welch).lower()})""").pl().to_dicts()


def assert_same(got: list[dict[str, object]], want: list[dict[str, object]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for column in FLOATS:
            if w[column] is None:
                assert g[column] is None, (g["unit"], column, g[column])
            elif column.endswith("_p") or column.endswith("_fdr"):
                # The bar for SQL p-values against SciPy: 1e-6 absolute.
                assert g[column] == pytest.approx(w[column], abs=1e-6), (g["unit"], column)
            else:
                assert g[column] == pytest.approx(w[column], rel=1e-9, abs=1e-9), (
                    g["unit"], column, g[column], w[column])
        for column in FLAGS:
            assert g[column] == w[column], (g["unit"], column)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(layer=layers(min_labels=2), welch=st.booleans())
def test_category_metrics_match_scipy(tmp_path_factory: pytest.TempPathFactory,
                                      layer: tuple[np.ndarray, list[str]], welch: bool) -> None:
    acts, labels = layer
    root = tmp_path_factory.mktemp("cat")
    load(root, acts, labels)
    assert_same(sql_rows(root, welch=welch), reference(acts, labels, "c0", welch))


def test_fdr_spans_units_and_selects_the_face_unit(root: Path) -> None:
    """40 units, one clearly face-selective; BH must adjust across all 40 (scipy reference)."""
    rng = np.random.default_rng(7)
    labels = ["face"] * 30 + ["body"] * 30 + ["place"] * 30
    acts = np.maximum(rng.normal(size=(90, 40)), 0)
    acts[:30, 3] += 3.0
    load(root, acts.astype(np.float32), labels)
    got = sql_rows(root, "face")
    assert_same(got, reference(acts.astype(np.float32), labels, "face"))
    assert [r["unit"] for r in got if r["is_ttest_selective"]] == [3]
    assert got[3]["is_fsi_selective"] and got[3]["is_dprime_selective"]


def test_massive_relu_ties(root: Path) -> None:
    """95 % exact zeros: the tie correction decides the rank-sum p-value."""
    rng = np.random.default_rng(8)
    acts = np.where(rng.random((400, 5)) < 0.95, 0, rng.random((400, 5)))
    acts[:20] += np.where(rng.random((20, 5)) < 0.5, 1, 0)
    labels = ["face"] * 100 + ["car"] * 300
    load(root, acts.astype(np.float32), labels)
    assert_same(sql_rows(root, "face"), reference(acts.astype(np.float32), labels, "face"))


def test_percent_selective_counts_units(root: Path) -> None:
    rng = np.random.default_rng(9)
    labels = ["face"] * 50 + ["rest"] * 50
    acts = np.maximum(rng.normal(size=(100, 20)), 0)
    acts[:50, :5] += 2
    load(root, acts.astype(np.float32), labels)
    units = sql_rows(root, "face")
    with unitsel.connection(root) as con:
        layer = con.sql("SELECT metric, n_units, n_selective, percent_selective "
                        "FROM layer_category_selectivity('s', 'face')").pl()
    for row in layer.iter_rows(named=True):
        n = sum(bool(u[f"is_{row['metric']}_selective"]) for u in units)
        assert (row["n_units"], row["n_selective"]) == (20, n)
        assert row["percent_selective"] == pytest.approx(100 * n / 20)
    assert sorted(layer["metric"]) == ["dprime", "fsi", "ranksum", "ttest"]


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    return unitsel.connect(tmp_path_factory.mktemp("dist"))


def _column(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> np.ndarray:
    return np.array([row[0] for row in con.execute(sql, list(params)).fetchall()], dtype=float)


def test_normal_tail_matches_scipy(con: duckdb.DuckDBPyConnection) -> None:
    z = np.concatenate([np.linspace(-12, 37, 4901), [0.0, 1e-9, -1e-9]])
    got = _column(con, "SELECT dist_normal_sf(z) FROM unnest(?::DOUBLE[]) u(z)", z.tolist())
    want = scipy.stats.norm.sf(z)
    np.testing.assert_allclose(got, want, rtol=1.2e-7, atol=0)


@pytest.mark.parametrize("df", [1, 2, 3, 4.5, 7.3, 10, 29, 100, 1_000, 10_000, 100_000])
def test_t_two_sided_p_matches_scipy(con: duckdb.DuckDBPyConnection, df: float) -> None:
    t = np.concatenate([np.linspace(-60, 60, 1201), [0.0, 1e-10, 0.01, 250.0]])
    got = _column(con, "SELECT dist_t_two_sided_p(t, ?::DOUBLE) FROM unnest(?::DOUBLE[]) u(t)",
                  df, t.tolist())
    want = 2 * scipy.stats.t.sf(np.abs(t), df)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-300)


def test_incomplete_beta_matches_scipy(con: duckdb.DuckDBPyConnection) -> None:
    """Rows with different a and b in one batch: the fraction's depth must not vary by row."""
    rng = np.random.default_rng(10)
    a, b = rng.uniform(0.2, 1000, 2000), rng.uniform(0.2, 1000, 2000)
    x = rng.uniform(0, 1, 2000)
    got = _column(con, """SELECT dist_incomplete_beta(a, b, x, 1 - x) FROM (
                          SELECT unnest(?::DOUBLE[]) a, unnest(?::DOUBLE[]) b,
                                 unnest(?::DOUBLE[]) x)""",
                  a.tolist(), b.tolist(), x.tolist())
    # lgamma differences of terms near 6000 leave ~1e-8 relative at a, b ~ 1000.
    np.testing.assert_allclose(got, scipy.special.betainc(a, b, x), rtol=1e-7, atol=1e-300)
