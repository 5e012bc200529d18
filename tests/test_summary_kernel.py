"""The one-pass summary kernel against a plain per-unit numpy/SciPy reference of each
definition, on random blocks with many ties, negative values, missing stimuli and both
subsets, for blocks of 1, 7 and all units."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from unitsel.summary_kernel import Labels, summarise_block

NAMES = ["a", "b", "c", "d"]
KEYS = {"class_stats": ["subset", "unit", "label"], "unit_top": ["subset", "unit", "rank"],
        "unit_summaries": ["subset", "unit"]}
S, I32, F32, F64 = pl.String, pl.Int32, pl.Float32, pl.Float64
SCHEMAS = {
    "class_stats": {"subset": S, "unit": I32, "label": S, "n": I32, "mean": F64, "m2": F64,
                    "min": F32, "max": F32, "rank_sum": F64},
    "unit_top": {"subset": S, "unit": I32, "rank": I32, "stimulus": I32, "label": S,
                 "activation": F32},
    "unit_summaries": {"subset": S, "unit": I32, "n": I32, "top_label": S,
                       "top_activation": F32, "max_other": F32, "n_top_label": I32,
                       "top_cluster": I32, "tie_term": F64},
}


def reference(acts: np.ndarray, present: np.ndarray, labels: Labels,
              k: int) -> dict[str, pl.DataFrame]:
    """Summaries by their definitions, one unit at a time (acts: stimuli x units)."""
    rows: dict[str, list[dict[str, object]]] = {name: [] for name in KEYS}
    subsets = {"all": np.ones(len(labels.index), bool)}
    if labels.correct is not None and labels.correct.any():
        subsets["correct"] = labels.correct
    for subset, chosen in subsets.items():
        for unit in range(acts.shape[1]):
            mask = chosen & present[:, unit] & (labels.index >= 0)
            if not mask.any():
                continue
            stimuli = np.nonzero(mask)[0]
            values = acts[mask, unit].astype(np.float64)
            label = np.array([NAMES[i] for i in labels.index[mask]])
            ranks = scipy.stats.rankdata(values)  # mid-ranks of ties
            for name in sorted(set(label)):
                x = values[label == name]
                rows["class_stats"].append({
                    "subset": subset, "unit": unit, "label": name, "n": len(x),
                    "mean": x.mean(), "m2": ((x - x.mean()) ** 2).sum(), "min": x.min(),
                    "max": x.max(), "rank_sum": ranks[label == name].sum()})
            order = sorted(range(len(values)), key=lambda i: (-values[i], stimuli[i]))
            for rank, i in enumerate(order[:k], start=1):
                rows["unit_top"].append({"subset": subset, "unit": unit, "rank": rank,
                                         "stimulus": stimuli[i], "label": label[i],
                                         "activation": values[i]})
            top = label[order[0]]
            others = values[label != top]
            max_other = others.max() if len(others) else None
            in_top = values[label == top]
            _, tie_sizes = np.unique(values, return_counts=True)
            rows["unit_summaries"].append({
                "subset": subset, "unit": unit, "n": len(values), "top_label": top,
                "top_activation": values[order[0]], "max_other": max_other,
                "n_top_label": len(in_top),
                "top_cluster": int((in_top > max_other).sum()) if max_other is not None
                else len(in_top),
                "tie_term": float((tie_sizes ** 3 - tie_sizes).sum())})
    return {name: pl.DataFrame(r, schema=SCHEMAS[name]) for name, r in rows.items()}


def compare(acts: np.ndarray, present: np.ndarray, labels: Labels, k: int,
            block: int) -> None:
    n_stimuli, n_units = acts.shape
    unit = np.tile(np.arange(n_units, dtype=np.int32), n_stimuli)
    stimulus = np.repeat(np.arange(n_stimuli, dtype=np.int32), n_units)
    keep = present.ravel()
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in KEYS}
    for first in range(0, n_units, block):
        rows = keep & (unit >= first) & (unit < first + block)
        if not rows.any():
            continue
        out = summarise_block(unit[rows], stimulus[rows], acts.ravel()[rows], labels, k)
        for name in out:
            parts[name].append(pl.DataFrame(out[name]).select(
                pl.col(c).cast(t) for c, t in SCHEMAS[name].items()))
    expected = reference(acts, present, labels, k)
    for name, keys in KEYS.items():
        got = pl.concat([pl.DataFrame(schema=SCHEMAS[name]), *parts[name]])
        got = got.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))
        assert_frame_equal(got.sort(keys), expected[name].sort(keys), check_exact=False,
                           rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n_stimuli=st.integers(1, 40), n_units=st.integers(1, 12),
       k=st.integers(1, 8), block=st.sampled_from([1, 7, 100]),
       with_predictions=st.booleans(), with_gaps=st.booleans())
def test_kernel_matches_the_definitions(seed: int, n_stimuli: int, n_units: int, k: int,
                                        block: int, with_predictions: bool,
                                        with_gaps: bool) -> None:
    rng = np.random.default_rng(seed)
    # Few distinct values (ties everywhere), negatives and both zeros.
    acts = (rng.integers(-2, 4, size=(n_stimuli, n_units)) * 0.5).astype(np.float32)
    acts[rng.random(acts.shape) < 0.1] = -0.0
    present = rng.random(acts.shape) > 0.15 if with_gaps else np.ones(acts.shape, bool)
    index = rng.integers(0, len(NAMES), n_stimuli)
    index[rng.random(n_stimuli) < 0.05] = -1  # not in the stimulus set
    correct = rng.random(n_stimuli) < 0.5 if with_predictions else None
    compare(acts, present, Labels(index, NAMES, correct), k, block)


@pytest.mark.parametrize("n_stimuli", [1, 3])
def test_one_label_has_no_other_label(n_stimuli: int) -> None:
    acts = np.arange(n_stimuli * 2, dtype=np.float32).reshape(n_stimuli, 2)
    labels = Labels(np.zeros(n_stimuli, np.int64), NAMES, None)
    out = summarise_block(np.tile(np.arange(2, dtype=np.int32), n_stimuli),
                          np.repeat(np.arange(n_stimuli, dtype=np.int32), 2), acts.ravel(),
                          labels, 100)
    assert np.isnan(out["unit_summaries"]["max_other"]).all()
    assert list(out["unit_summaries"]["top_cluster"]) == [n_stimuli, n_stimuli]
