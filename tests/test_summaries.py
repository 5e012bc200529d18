"""The per-file summary pass against a plain per-unit numpy/SciPy reference of each
definition, on random data files with many ties, negative values, missing stimuli and both
subsets, for files of 1, 7 and all units; and a partition written as several data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import unitsel
import unitsel.lake
from ingest._staging import ActivationSink
from unitsel.summaries import summarise_files

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
                       "top_cluster": I32, "tie_term": F64, "precision_label": S,
                       "most_in_100": I32, "most_in_60": I32},
}


def reference(acts: np.ndarray, present: np.ndarray, index: np.ndarray,
              correct: np.ndarray, k: int) -> dict[str, pl.DataFrame]:
    """Summaries by their definitions, one unit at a time (acts: stimuli x units)."""
    rows: dict[str, list[dict[str, object]]] = {name: [] for name in KEYS}
    subsets = {"all": np.ones(len(index), bool)}
    if correct.any():
        subsets["correct"] = correct
    for subset, chosen in subsets.items():
        for unit in range(acts.shape[1]):
            mask = chosen & present[:, unit] & (index >= 0)
            if not mask.any():
                continue
            stimuli = np.nonzero(mask)[0]
            values = acts[mask, unit].astype(np.float64)
            label = np.array([NAMES[i] for i in index[mask]])
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
            # Precision's counts: the top 100 and 60 (whatever k), ties by first rank.
            counts = {top: [list(label[order[:top]]).count(name) for name in NAMES]
                      for top in (100, 60)}
            first = [next((r for r, i in enumerate(order) if label[i] == name), len(order))
                     for name in NAMES]
            precision = min(range(len(NAMES)), key=lambda j: (-counts[100][j], first[j]))
            rows["unit_summaries"].append({
                "subset": subset, "unit": unit, "n": len(values), "top_label": top,
                "top_activation": values[order[0]], "max_other": max_other,
                "n_top_label": len(in_top),
                "top_cluster": int((in_top > max_other).sum()) if max_other is not None
                else len(in_top),
                "tie_term": float((tie_sizes ** 3 - tie_sizes).sum()),
                "precision_label": NAMES[precision], "most_in_100": max(counts[100]),
                "most_in_60": max(counts[60])})
    return {name: pl.DataFrame(r, schema=SCHEMAS[name]) for name, r in rows.items()}


def compare(tmp: Path, acts: np.ndarray, present: np.ndarray, index: np.ndarray,
            correct: np.ndarray | None, k: int, block: int, together: bool = False,
            shuffle: np.random.Generator | None = None) -> None:
    """Write the units in data files of `block` units, each file a partition (layer) of its
    own (its rows in stimulus order, or in an order drawn by `shuffle`), summarise each file
    alone or all `together` in one task, compare."""
    n_stimuli, n_units = acts.shape
    known = index >= 0
    labels = pl.DataFrame({
        "stimulus": np.nonzero(known)[0].astype(np.int32),
        "label": [NAMES[i] for i in index[known]],
        "is_correct": pl.Series([None] * int(known.sum()) if correct is None
                                else correct[known], dtype=pl.Boolean),
    })
    unit = np.tile(np.arange(n_units, dtype=np.int32), n_stimuli)
    stimulus = np.repeat(np.arange(n_stimuli, dtype=np.int32), n_units)
    keep = present.ravel()
    order = np.arange(len(keep)) if shuffle is None else shuffle.permutation(len(keep))
    unit, stimulus, keep, values = unit[order], stimulus[order], keep[order], acts.ravel()[order]
    files = []
    for first in range(0, n_units, block):
        rows = keep & (unit >= first) & (unit < first + block)
        path = tmp / f"block{first}.parquet"
        pq.write_table(pa.table({"unit": unit[rows], "stimulus": stimulus[rows],
                                 "activation": values[rows]}), path)
        files.append(({"model_id": "m", "stimulus_set": "s", "layer": f"block{first}",
                       "pool": "none"}, str(path)))
    tasks = [files] if together else [[file] for file in files]
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in KEYS}
    for task in tasks:
        for (part, _), outputs in zip(task, summarise_files(str(tmp), task, labels, k),
                                      strict=True):
            first = int(part["layer"].removeprefix("block"))
            for name, output in outputs:
                frame = pl.read_parquet(output)
                # Each file's rows land in its own partition, with its own units.
                assert frame.select("model_id", "stimulus_set", "layer", "pool").unique(
                ).rows(named=True) == [part]
                assert frame["unit"].is_between(first, first + block - 1).all()
                parts[name].append(frame.select(pl.col(c).cast(t)
                                                for c, t in SCHEMAS[name].items()))
    expected = reference(acts, present, index,
                         np.zeros(n_stimuli, bool) if correct is None else correct, k)
    for name, keys in KEYS.items():
        got = pl.concat([pl.DataFrame(schema=SCHEMAS[name]), *parts[name]])
        assert_frame_equal(got.sort(keys), expected[name].sort(keys), check_exact=False,
                           rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), n_stimuli=st.integers(1, 40), n_units=st.integers(1, 12),
       k=st.integers(1, 8), block=st.sampled_from([1, 7, 100]),
       with_predictions=st.booleans(), with_gaps=st.booleans(), together=st.booleans())
def test_file_summaries_match_the_definitions(tmp_path_factory: pytest.TempPathFactory,
                                              seed: int, n_stimuli: int, n_units: int,
                                              k: int, block: int, with_predictions: bool,
                                              with_gaps: bool, together: bool) -> None:
    rng = np.random.default_rng(seed)
    # Few distinct values (ties everywhere), negatives and both zeros.
    acts = (rng.integers(-2, 4, size=(n_stimuli, n_units)) * 0.5).astype(np.float32)
    acts[rng.random(acts.shape) < 0.1] = -0.0
    present = rng.random(acts.shape) > 0.15 if with_gaps else np.ones(acts.shape, bool)
    index = rng.integers(0, len(NAMES), n_stimuli)
    index[rng.random(n_stimuli) < 0.05] = -1  # not in the stimulus set
    correct = rng.random(n_stimuli) < 0.5 if with_predictions else None
    compare(tmp_path_factory.mktemp("files"), acts, present, index, correct, k, block,
            together)


def test_a_partition_in_several_files_has_the_summaries_of_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    acts = (rng.integers(0, 5, size=(30, 10)) * 0.25).astype(np.float32)
    labels = pl.DataFrame({"stimulus": np.arange(30), "uri": None,
                           "label": [NAMES[i % 3] for i in range(30)], "wnid": None},
                          schema_overrides={"stimulus": pl.Int32, "uri": pl.String,
                                            "wnid": pl.String})
    tables = {}
    for name, file_rows in (("one", 10_000), ("several", 90)):
        root = tmp_path / name
        with unitsel.Transaction(root) as tx:
            tx.write(labels.with_columns(stimulus_set=pl.lit("s")), "stimuli")
            ActivationSink(tx, "m", "s", "test", 30, file_rows)("l", "none", 0, acts)
        con = unitsel.lake.attach(root.resolve())
        files = con.sql("SELECT count(*) FROM ducklake_list_files('lake', 'activations')"
                        ).fetchone()
        con.close()
        assert files == ((1,) if name == "one" else (4,))  # 3 units (90 rows) per file
        tables[name] = {t: unitsel.scan(t, root).collect().sort(pl.all())
                        for t in ("activations", "class_stats", "unit_top", "unit_summaries")}
    for t, frame in tables["one"].items():
        assert_frame_equal(tables["several"][t], frame)


def test_a_second_model_on_a_stimulus_set_leaves_the_first_models_summaries(
        tmp_path: Path) -> None:
    from ingest.arrays import ingest_arrays

    root = tmp_path / "warehouse"
    np.save(tmp_path / "acts.npy", np.arange(24, dtype=np.float32).reshape(8, 3))
    (tmp_path / "labels.csv").write_text("stimulus,label,is_correct\n" + "".join(
        f"{s},c{s % 2},{str(s % 3 > 0).lower()}\n" for s in range(8)))

    def summary_files(model_id: str) -> set[str]:
        con = unitsel.lake.attach(root.resolve())
        try:
            return {path for t in ("class_stats", "unit_top", "unit_summaries")
                    for (path,) in con.sql("SELECT data_file FROM ducklake_list_files("
                                           "'lake', ?)", params=[t]).fetchall()
                    if f"model_id={model_id}/" in path}
        finally:
            con.close()

    def ingest(model_id: str) -> None:
        with unitsel.Transaction(root, progress=False) as tx:
            ingest_arrays(tx, tmp_path / "acts.npy", tmp_path / "labels.csv",
                          model_id=model_id, stimulus_set="s", layer="fc")

    ingest("a")
    first = summary_files("a")
    assert len(first) == 3
    ingest("b")  # the same stimuli: not rewritten, so a's summaries stay as they are
    ingest("a")  # a again, identical stimuli and predictions: only a's activations are new
    ingest("b")
    assert summary_files("a") != first  # rebuilt with its own rewritten activations
    again = summary_files("a")
    ingest("b")
    assert summary_files("a") == again


@pytest.mark.parametrize("spread", [1, 10**6], ids=["dense ids: lookup", "sparse ids: search"])
def test_stimulus_positions_match_a_dictionary(spread: int) -> None:
    """Data-file stimulus ids to positions in the sorted set (-1 outside it), both ways."""
    from unitsel.summaries import _positions

    rng = np.random.default_rng(spread)
    stimuli = np.unique(rng.integers(-50, 500, 300) * spread).astype(np.int64)
    ids = np.concatenate([stimuli, rng.integers(-600, 600, 500) * spread])
    where = {int(s): i for i, s in enumerate(stimuli)}
    assert _positions(stimuli, ids).tolist() == [where.get(int(i), -1) for i in ids]


@pytest.mark.parametrize("shuffled", [False, True])
def test_units_of_many_stimuli_match_the_definitions(tmp_path: Path, shuffled: bool) -> None:
    """Units with thousands of rows, in stimulus order (sorted by radix on the activations
    alone) or shuffled (sorted by comparison): continuous values, ties, negatives, -0.0."""
    rng = np.random.default_rng(7)
    n_stimuli = 6000
    acts = rng.normal(size=(n_stimuli, 3)).astype(np.float32)
    ties = rng.random(acts.shape) < 0.4
    acts[ties] = np.round(acts[ties])
    acts[rng.random(acts.shape) < 0.05] = -0.0
    acts[:, 2] *= 1e30  # exponents far apart: every radix digit differs somewhere
    index = rng.integers(0, len(NAMES), n_stimuli)
    compare(tmp_path, acts, rng.random(acts.shape) > 0.1, index, rng.random(n_stimuli) < 0.6,
            k=50, block=2, shuffle=rng if shuffled else None)


@pytest.mark.parametrize("held_bytes", [0, 1200, 10**9])
def test_summaries_from_held_blocks_equal_those_read_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held_bytes: int) -> None:
    """A job keeps the blocks it writes (within `HELD_BYTES`: none, some files, all) and
    summarises them from memory; rebuilding from the data files gives the same rows."""
    monkeypatch.setattr(unitsel.summaries, "HELD_BYTES", held_bytes)
    rng = np.random.default_rng(11)
    acts = (rng.integers(-1, 6, size=(50, 12)) * 0.5).astype(np.float32)
    labels = pl.DataFrame({"stimulus": np.arange(50), "uri": None,
                           "label": [NAMES[i % 4] for i in range(50)], "wnid": None},
                          schema_overrides={"stimulus": pl.Int32, "uri": pl.String,
                                            "wnid": pl.String})
    root = tmp_path / "w"
    with unitsel.Transaction(root) as tx:
        tx.write(labels.with_columns(stimulus_set=pl.lit("s")), "stimuli")
        sink = ActivationSink(tx, "m", "s", "test", 50, file_rows=250)  # 5 units a file
        for first in range(0, 50, 20):  # three blocks of stimuli: each file held in pieces
            sink("l", "none", first, acts[first:first + 20])
        held = {path: len(blocks) for path, blocks in tx._summaries.held.items()}
    # Pieces of 400, 400 and 160 bytes per block: at 1200 bytes the budget runs out in the
    # second block, and files that no longer fit are dropped whole; the third file stays.
    assert len(held) == {0: 0, 1200: 1, 10**9: 3}[held_bytes]
    assert all(n == 3 for n in held.values())
    derived = ("class_stats", "unit_top", "unit_summaries")
    written = {t: unitsel.scan(t, root).collect().sort(pl.all()) for t in derived}
    with unitsel.Transaction(root) as tx:
        tx.rebuild_summaries(every=True)
    for t in derived:
        assert written[t].height > 0
        assert_frame_equal(unitsel.scan(t, root).collect().sort(pl.all()), written[t])
