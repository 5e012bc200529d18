"""INVERT (Bykov et al. 2023): concept masks, `unit_concept_auroc` against scikit-learn and
SciPy, and the beam search against a re-implementation of INVERT's own search.

INVERT's package (lapalap/invert) is not on the package registries and needs sympytorch and
torchmetrics, so `invert_search` below re-implements its `Invert.explain_representation`
line by line on its sympy formulas, with scikit-learn's `roc_auc_score` on the raw
activations in place of torchmetrics' `binary_auroc` (the same AUROC, in float64). Its AUROCs
are rounded to 12 digits before they are sorted, so AUROCs that are equal as fractions tie as
they do in exact arithmetic.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import scipy.stats
import sympy
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

import unitsel
from tests.layers import layers, load
from unitsel import Transaction
from unitsel.analyses.invert import Formula, Search, explain, run_invert
from unitsel.cli import cli
from unitsel.concept_masks import concept_masks, ingest_concept_masks
from unitsel.errors import InputError

# --- references -----------------------------------------------------------------------------


def mann_whitney_p(a: np.ndarray, mask: np.ndarray) -> float | None:
    """SciPy's two-sided asymptotic p (tie and continuity corrected); None where it is nan."""
    p = scipy.stats.mannwhitneyu(a[mask].astype(np.float64), a[~mask].astype(np.float64),
                                 alternative="two-sided", method="asymptotic").pvalue
    return None if np.isnan(p) else float(p)


def bh(p: list[float | None]) -> list[float | None]:
    """Benjamini-Hochberg q of the p-values that are not None (scipy)."""
    tested = [x for x in p if x is not None]
    q = iter(scipy.stats.false_discovery_control(tested) if tested else [])
    return [None if x is None else float(next(q)) for x in p]


def evaluate(expr: sympy.Basic, masks: dict[str, np.ndarray]) -> np.ndarray:
    """A sympy formula's stimuli, straight from the concepts' masks."""
    if isinstance(expr, sympy.Symbol):
        return masks[expr.name]
    if isinstance(expr, sympy.Not):
        return ~evaluate(expr.args[0], masks)
    parts = [evaluate(x, masks) for x in expr.args]
    if isinstance(expr, sympy.And):
        return np.logical_and.reduce(parts)
    assert isinstance(expr, sympy.Or), expr
    return np.logical_or.reduce(parts)


def invert_search(a: np.ndarray, masks: dict[str, np.ndarray], search: Search
                  ) -> list[dict[str, Any]]:
    """INVERT's `explain_representation` (lapalap/invert, invert/explainer.py) for one unit's
    activations `a` and concept masks over the same stimuli: its final beam."""
    n = len(a)

    def metric(mask: np.ndarray) -> float:
        return round(float(roc_auc_score(mask, a)), 12)

    def admissible(fraction: float) -> bool:
        return (search.min_fraction <= fraction <= search.max_fraction
                and 0 < fraction < 1)

    symbols = [sympy.Symbol(name) for name in masks]
    atomic = [{"formula": s, "metric": metric(masks[s.name]),
               "concept_fraction": masks[s.name].sum() / n} for s in symbols]
    atomic += [{"formula": ~x["formula"], "metric": round(1 - x["metric"], 12),
                "concept_fraction": 1 - x["concept_fraction"]} for x in list(atomic)]
    for x in atomic:
        x["differentiability"] = round(2 * abs(0.5 - x["metric"]), 12)
    positive = search.mode == "positive"
    atomic = sorted(atomic, key=lambda x: x["metric"], reverse=positive)
    beam = [x for x in atomic if admissible(x["concept_fraction"])][:search.beam_size]
    atomic = sorted(atomic, key=lambda x: x["differentiability"], reverse=True)
    atomic = atomic[:search.limit_search]
    for _ in range(2, search.max_length + 1):
        for i in range(min(search.beam_size, len(beam))):
            for atom in atomic:
                for formula in (beam[i]["formula"] & atom["formula"],
                                beam[i]["formula"] | atom["formula"]):
                    mask = evaluate(formula, masks)
                    if admissible(mask.sum() / n):
                        beam.append({"formula": formula, "metric": metric(mask),
                                     "concept_fraction": mask.sum() / n})
        beam = sorted(beam, key=lambda x: x["metric"], reverse=positive)[:search.beam_size]
    for x in beam:
        x["mask"] = evaluate(x["formula"], masks)
    return beam


def formula_mask(text: str, masks: dict[str, np.ndarray]) -> np.ndarray:
    """A formula as unit_labels writes it, evaluated directly (concept names are plain
    identifiers here; ~ & | act on numpy's boolean arrays with Python's precedence)."""
    return np.asarray(eval(text, {"__builtins__": {}}, dict(masks)))


# --- data -----------------------------------------------------------------------------------

N, N_LABELS = 96, 8
LABELS = [f"c{i % N_LABELS}" for i in range(N)]
UNIONS = {"odd": ["c1", "c3", "c5", "c7"], "low": ["c0", "c1", "c2"], "edge": ["c0", "c7"]}


def activations(seed: int = 11) -> np.ndarray:
    """Seven units: continuous, ReLU (ties at 0), rounded (few values), one tuned to c1 and
    c3, one to a per-stimulus concept, one tuned away (lowest AUROC) from c4, one silent
    (every formula ties at AUROC 1/2, p = 1)."""
    rng = np.random.default_rng(seed)
    labels = np.array(LABELS)
    acts = rng.normal(size=(N, 7))
    acts[:, 6] = 0.0
    acts[:, 1] = np.maximum(acts[:, 1], 0)
    acts[:, 2] = np.round(acts[:, 2])
    acts[np.isin(labels, ["c1", "c3"]), 3] += 4.0
    acts[::3, 4] += 4.0
    acts[labels == "c4", 5] -= 4.0
    return acts.astype(np.float32)


def label_concepts() -> pl.DataFrame:
    """Each label and three unions of labels: label-set concept_masks rows."""
    rows = [(f"c{i}", f"c{i}") for i in range(N_LABELS)]
    rows += [(name, label) for name, labels in UNIONS.items() for label in labels]
    return pl.DataFrame(rows, schema=["concept", "label"], orient="row").with_columns(
        stimulus_set=pl.lit("s"), concept_set=pl.lit("labels"), kind=pl.lit("label"),
        stimulus=pl.lit(None, pl.Int32))


def stimulus_csv(folder: Path, seed: int = 4) -> Path:
    """Five per-stimulus concepts k0..k4 (k0: every third stimulus, the others random)."""
    rng = np.random.default_rng(seed)
    marked = {"k0": range(0, N, 3), **{f"k{i}": np.flatnonzero(rng.random(N) < 0.3)
                                       for i in range(1, 5)}}
    path = folder / "concepts.csv"
    path.write_text("stimulus,concept\n" + "".join(
        f"{s},{name}\n" for name, stimuli in marked.items() for s in stimuli))
    return path


def masks_of(rows: pl.DataFrame, keep: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Each concept's stimuli (of those in `keep`), straight from concept_masks rows."""
    labels = np.array(LABELS)
    out = {}
    for (concept,), group in rows.group_by("concept"):
        mask = np.isin(labels, group["label"].drop_nulls().to_list())
        mask |= np.isin(np.arange(N), group["stimulus"].drop_nulls().to_list())
        out[str(concept)] = mask if keep is None else mask[keep]
    return dict(sorted(out.items()))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seven units, two thirds of the stimuli correct, and two concept sets: label sets
    (`labels`) and labels plus per-stimulus concepts from a CSV (`mixed`)."""
    folder = tmp_path_factory.mktemp("invert")
    root = folder / "warehouse"
    correct = [s % 3 != 1 for s in range(N)]
    load(root, activations(), LABELS, correct)
    with Transaction(root, progress=False) as tx:
        tx.write(label_concepts(), "concept_masks")
        ingest_concept_masks(tx, "s", "mixed", labels=True, files=[stimulus_csv(folder)])
    return root


SEARCHES = [Search(),
            Search(mode="negative"),
            Search(max_length=4, beam_size=4, min_fraction=0.1, max_fraction=0.6,
                   limit_search=7)]


# --- the search against INVERT's ------------------------------------------------------------


@pytest.mark.parametrize("search", SEARCHES, ids=["default", "negative", "L4-B4-bounds-limit"])
def test_beams_equal_invert_search(tmp_path: Path, search: Search) -> None:
    """Per-stimulus cells: every unit's final beam, place by place, has INVERT's stimuli and
    AUROC (repeats included), and each formula's text marks those stimuli."""
    acts = activations()
    rows = pl.read_csv(stimulus_csv(tmp_path))
    masks = masks_of(rows.with_columns(label=pl.lit(None, pl.String)))
    names = list(masks)
    weights = scipy.stats.rankdata(acts.T.astype(np.float64), axis=1)
    beams = explain(weights, np.ones(N), np.array([masks[c] for c in names]), search)
    for unit, beam in enumerate(beams):
        want = invert_search(acts[:, unit], masks, search)
        assert len(beam) == len(want) == search.beam_size
        for place, (got, ref) in enumerate(zip(beam, want, strict=True)):
            mask = formula_mask(got.formula.text(names), masks)
            assert np.array_equal(mask, ref["mask"]), (unit, place, got, ref["formula"])
            assert got.n_in == mask.sum()
            assert roc_auc_score(mask, acts[:, unit]) == pytest.approx(ref["metric"], abs=1e-12)


@pytest.mark.parametrize("search", SEARCHES, ids=["default", "negative", "L4-B4-bounds-limit"])
@pytest.mark.parametrize("concept_set", ["labels", "mixed"])
def test_unit_labels_equal_invert_search(warehouse: Path, concept_set: str,
                                         search: Search) -> None:
    """The job (label sets from class_stats; per-stimulus concepts from the activations):
    per unit INVERT's best formula and AUROC, the distinct stimuli sets of its final beam,
    and every row's columns from a direct evaluation of its formula."""
    with Transaction(warehouse, progress=False) as tx:
        result = run_invert(tx, "m", "s", "l", "none", concept_set, search)
    rows = unitsel.scan("concept_masks", warehouse).filter(concept_set=concept_set).collect()
    masks = masks_of(rows)
    acts = activations()
    check_rows(result, masks, acts)
    for unit in range(acts.shape[1]):
        want = invert_search(acts[:, unit], masks, search)
        got = result.filter(unit=unit).sort("rank")
        best = formula_mask(got["formula"][0], masks)
        assert np.array_equal(best, want[0]["mask"]), (unit, got["formula"][0],
                                                       want[0]["formula"])
        assert got["auroc"][0] == pytest.approx(want[0]["metric"], abs=1e-12)
        assert ({formula_mask(f, masks).tobytes() for f in got["formula"]}
                == {x["mask"].tobytes() for x in want})
    stored = unitsel.scan("unit_labels", warehouse).filter(
        concept_set=concept_set, mode=search.mode).collect()
    assert stored.sort("unit", "rank").drop("snapshot_id").equals(
        result.select(stored.drop("snapshot_id").columns).sort("unit", "rank"))


def check_rows(result: pl.DataFrame, masks: dict[str, np.ndarray], acts: np.ndarray,
               keep: np.ndarray | None = None) -> None:
    """Every row against its formula evaluated directly: stimuli, AUROC (scikit-learn),
    p (SciPy), q (BH over the rows), concepts, length, rank order, one row per formula."""
    keep = np.arange(len(acts)) if keep is None else keep
    assert result.height and not result.select("unit", "formula").is_duplicated().any()
    for row in result.iter_rows(named=True):
        mask = formula_mask(row["formula"], masks)
        a = acts[keep, row["unit"]]
        assert row["n_in"] == mask.sum()
        assert row["concept_fraction"] == pytest.approx(mask.mean(), abs=1e-15)
        assert row["auroc"] == pytest.approx(roc_auc_score(mask, a), abs=1e-12)
        p = mann_whitney_p(a, mask)
        assert row["p"] is None if p is None else row["p"] == pytest.approx(p, rel=1e-9)
        names = re.findall(r"[A-Za-z_][\w.]*", row["formula"])
        assert row["concepts"] == sorted(set(names)) and row["length"] == len(names)
    assert result["q"].to_list() == pytest.approx(bh(result["p"].to_list()), abs=1e-12)
    for _, unit in result.group_by("unit"):
        assert unit["rank"].to_list() == list(range(1, unit.height + 1))


def test_correct_subset_ranks_only_correct_stimuli(warehouse: Path) -> None:
    keep = np.flatnonzero([s % 3 != 1 for s in range(N)])
    with Transaction(warehouse, progress=False) as tx:
        result = run_invert(tx, "m", "s", "l", "none", "mixed", Search(), correct_only=True)
    rows = unitsel.scan("concept_masks", warehouse).filter(concept_set="mixed").collect()
    masks = masks_of(rows, keep)
    check_rows(result, masks, activations(), keep)
    assert (result["subset"] == "correct").all()
    for unit in range(7):
        want = invert_search(activations()[keep, unit], masks, Search())
        assert result.filter(unit=unit, rank=1)["auroc"][0] == pytest.approx(
            want[0]["metric"], abs=1e-12)


def test_planted_units_get_their_formulas(warehouse: Path) -> None:
    with Transaction(warehouse, progress=False) as tx:
        result = run_invert(tx, "m", "s", "l", "none", "mixed", Search(max_length=2))
        negative = run_invert(tx, "m", "s", "l", "none", "labels",
                              Search(max_length=1, mode="negative"))
    best = dict(result.filter(rank=1).select("unit", "formula").rows())
    assert best[3] == "c1 | c3" and best[4] == "k0"
    assert negative.filter(unit=5, rank=1)["formula"][0] == "c4"
    assert negative.filter(unit=5, rank=1)["q"][0] < 0.05
    silent = result.filter(unit=6)
    assert (silent["auroc"] == 0.5).all() and (silent["p"] == 1.0).all()


# --- formulas -------------------------------------------------------------------------------


def test_formulas_are_canonical() -> None:
    x, y, z = (Formula.literal(i) for i in range(3))
    assert x.combine("&", x) == x
    assert x.combine("&", y) == y.combine("&", x)
    assert x.combine("&", y).combine("&", z) == x.combine("&", z).combine("&", y)
    assert x.combine("|", y).combine("&", x) == x  # absorption
    assert x.combine("&", y).combine("|", z).length == 3
    names = ["a b", "dog.n.01", 'say "hi"']
    assert (x.combine("&", Formula.literal(1, True)).combine("|", z).text(names)
            == '"say \\"hi\\"" | ("a b" & ~dog.n.01)')


def test_search_settings_are_checked() -> None:
    for bad in ({"beam_size": 0}, {"max_length": 0}, {"mode": "both"},
                {"min_fraction": 0.6, "max_fraction": 0.5}, {"limit_search": 0}):
        with pytest.raises(InputError):
            Search(**bad)  # type: ignore[arg-type]


# --- unit_concept_auroc against scikit-learn and SciPy --------------------------------------


def macro_reference(acts: np.ndarray, labels: list[str], masks: dict[str, np.ndarray],
                    keep: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for unit in range(acts.shape[1]):
        a = acts[keep, unit]
        for concept, mask in masks.items():
            m = mask[keep]
            if not m.any():
                continue
            both = m.all()
            rows.append({"unit": unit, "concept": concept, "n_in": int(m.sum()),
                         "n_out": int((~m).sum()),
                         "auroc": None if both else float(roc_auc_score(m, a)),
                         "p": None if both else mann_whitney_p(a, m)})
    for row, q in zip(rows, bh([r["p"] for r in rows]), strict=True):
        row["q"] = q
    return rows


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(layer=layers(min_labels=2), seed=st.integers(0, 2**32 - 1))
@example(layer=(np.full((6, 2), 0.5, np.float32), ["c0", "c1"] * 3), seed=1)  # all tie: p = 1
@example(layer=(np.array([[0.0], [-0.0]], np.float32), ["c0", "c1"]), seed=0)
def test_unit_concept_auroc_matches_sklearn_and_scipy(
        tmp_path_factory: pytest.TempPathFactory, layer: tuple[np.ndarray, list[str]],
        seed: int) -> None:
    """Random layers (ReLU zeros, rounded ties, all-equal, negative) with label-set concepts
    (random unions of labels) and per-stimulus concepts, both subsets."""
    acts, labels = layer
    rng = np.random.default_rng(seed)
    n = len(labels)
    correct = list(rng.random(n) < 0.6)
    root = tmp_path_factory.mktemp("auroc")
    load(root, acts, labels, correct)
    present = sorted(set(labels))
    unions = {f"u{i}": list(rng.choice(present, rng.integers(1, len(present) + 1),
                                       replace=False)) for i in range(4)}
    marked = {f"k{i}": np.flatnonzero(rng.random(n) < rng.random()) for i in range(4)}
    frames = {
        "sets": pl.DataFrame([(c, x) for c, xs in unions.items() for x in xs],
                             schema=["concept", "label"], orient="row").with_columns(
            kind=pl.lit("label"), stimulus=pl.lit(None, pl.Int32)),
        "stimuli": pl.DataFrame([(c, int(s)) for c, ss in marked.items() for s in ss],
                                schema={"concept": pl.String, "stimulus": pl.Int32},
                                orient="row").with_columns(
            kind=pl.lit("csv"), label=pl.lit(None, pl.String))}
    with Transaction(root, progress=False) as tx:
        for name, frame in frames.items():
            if frame.height:
                tx.write(frame.with_columns(stimulus_set=pl.lit("s"),
                                            concept_set=pl.lit(name)), "concept_masks")
    label_arr = np.array(labels)
    masks = {"sets": {c: np.isin(label_arr, xs) for c, xs in unions.items()},
             "stimuli": {c: np.isin(np.arange(n), ss) for c, ss in marked.items()}}
    for name, frame in frames.items():
        if not frame.height:
            continue
        for correct_only in (False, True):
            keep = np.flatnonzero(correct) if correct_only else np.arange(n)
            with unitsel.connection(root) as con:
                got = con.sql(f"""SELECT * FROM unit_concept_auroc('m', 's', 'l', 'none',
                    '{name}', correct_only := {str(correct_only).lower()})""").pl().to_dicts()
            want = sorted(macro_reference(acts, labels, masks[name], keep),
                          key=lambda r: (r["unit"], r["concept"]))
            assert len(got) == len(want), (name, correct_only)
            for g, w in zip(got, want, strict=True):
                assert (g["unit"], g["concept"], g["n_in"], g["n_out"]) == (
                    w["unit"], w["concept"], w["n_in"], w["n_out"])
                for column in ("auroc", "p", "q"):
                    if w[column] is None:
                        assert g[column] is None, (g, w)
                    else:  # p and q: the SQL normal tail is good to 1.2e-7 relative
                        tolerance = 1e-12 if column == "auroc" else 1e-6
                        assert g[column] == pytest.approx(w[column], abs=tolerance), (g, w)


def test_unit_concept_auroc_names_what_exists(warehouse: Path) -> None:
    import duckdb

    with unitsel.connection(warehouse) as con, pytest.raises(
            duckdb.Error, match=r"unknown concept set 'nope': the warehouse has .*labels"):
        con.sql("SELECT * FROM unit_concept_auroc('m', 's', 'l', 'none', 'nope')").fetchall()


def test_job_atoms_equal_the_macro(warehouse: Path) -> None:
    """Length-1 formulas of the job are the macro's concepts: same AUROC and p."""
    with Transaction(warehouse, progress=False) as tx:
        result = run_invert(tx, "m", "s", "l", "none", "labels",
                            Search(max_length=1, beam_size=30, max_fraction=1.0))
    with unitsel.connection(warehouse) as con:
        macro = con.sql("SELECT unit, concept AS formula, auroc, p FROM "
                        "unit_concept_auroc('m', 's', 'l', 'none', 'labels')").pl()
    joined = result.join(macro, on=["unit", "formula"], suffix="_sql")
    assert joined.height == macro.height == 7 * 11
    assert (joined["auroc"] - joined["auroc_sql"]).abs().max() < 1e-12  # type: ignore[operator]
    assert (joined["p"] - joined["p_sql"]).abs().max() < 1e-6  # type: ignore[operator]


# --- concept masks --------------------------------------------------------------------------

ANIMALS = {"dog": "n02084071", "cat": "n02121620", "car": "n02958343",
           "einstein": "n10954498", "carnivore": "n02075296"}


def test_hypernym_masks_are_the_wordnet_closure(tmp_path: Path) -> None:
    """Every synset above a label (instance hypernyms included) covers exactly the labels
    below it; a label's synset is a concept only when it lies above another label's."""
    from unitsel import wordnet

    root = tmp_path / "warehouse"
    labels = list(ANIMALS)
    with Transaction(root, progress=False) as tx:
        tx.write(pl.DataFrame({"stimulus_set": "zoo", "stimulus": range(5), "uri": None,
                               "label": labels, "wnid": list(ANIMALS.values())}), "stimuli")
    with Transaction(root, progress=False) as tx:
        frame = concept_masks(tx, "zoo", "zoo-wordnet", labels=True, hypernyms=True)
    above: dict[str, set[str]] = {}
    for label, wnid in ANIMALS.items():
        for path in wordnet.synset(wnid).hypernym_paths():  # NLTK: hypernyms + instances
            for s in path[:-1]:
                above.setdefault(s.name(), set()).add(label)
    above["carnivore.n.01"].add("carnivore")
    got = frame.filter(kind="wordnet").group_by("concept").agg(pl.col("label"))
    assert {c: set(ls) for c, ls in got.rows()} == above
    assert {"physicist.n.01", "scientist.n.01"} <= set(above)  # Einstein's instance hypernyms
    assert above["carnivore.n.01"] == {"dog", "cat", "carnivore"}
    assert "dog.n.01" not in above and "entity.n.01" in above
    assert set(frame.filter(kind="label")["concept"]) == set(labels)
    assert frame["stimulus"].is_null().all()
    with Transaction(root, progress=False) as tx:  # the wnids from a concept set instead
        tx.write(pl.DataFrame({"concept_set": "zoo-map", "class_index": range(5),
                               "label": labels, "wnid": list(ANIMALS.values()),
                               "name": labels}), "concepts")
        tx.write(pl.DataFrame({"stimulus_set": "zoo", "stimulus": range(5), "uri": None,
                               "label": labels, "wnid": None}), "stimuli")
    with Transaction(root, progress=False) as tx:
        assert concept_masks(tx, "zoo", "zoo-wordnet", labels=True, hypernyms=True,
                             wnids_from="zoo-map").equals(frame)


def test_annotations_and_csv_mark_stimuli(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    load(root, np.zeros((6, 1), np.float32), ["a", "a", "b", "b", "c", "c"])
    with Transaction(root, progress=False) as tx:
        tx.write(pl.DataFrame({
            "study_id": "st", "annotator_id": ["x", "y", "x", "x"], "model_id": "m",
            "stimulus_set": "s", "stimulus": [0, 0, 3, 5], "label": ["a", "a", "b", "c"],
            "feature": [1, 2, 1, 1], "concept": ["ear", "ear", "wheel", None]}), "annotations")
    csv = tmp_path / "c.csv"
    csv.write_text("\ufeffstimulus,concept\n1,stripes\n2, stripes \n2,stripes\n4,dots\n")
    with Transaction(root, progress=False) as tx:
        frame = ingest_concept_masks(tx, "s", "named", studies=["st"], files=[csv])
    got = {(k, c): sorted(g["stimulus"]) for (k, c), g in frame.group_by("kind", "concept")}
    assert got == {("annotation", "ear"): [0], ("annotation", "wheel"): [3],
                   ("csv", "stripes"): [1, 2], ("csv", "dots"): [4]}
    assert frame["label"].is_null().all()


@pytest.mark.parametrize(("text", "message"), [
    ("stimulus,concept,extra\n0,a,b\n", "column 'extra'"),
    ("stimulus,concept\n0,a\nx,b\n", "row 3, column 'stimulus': 'x' is not an integer"),
    ("stimulus,concept\n6,a\n", "row 2, column 'stimulus': no stimulus 6 in the set"),
    ("stimulus,concept\n0,\n", "row 2, column 'concept'"),
    ("stimulus,concept\n", "no rows after the header"),
])
def test_bad_concept_csv_is_located(tmp_path: Path, text: str, message: str) -> None:
    root = tmp_path / "warehouse"
    load(root, np.zeros((6, 1), np.float32), ["a", "a", "b", "b", "c", "c"])
    csv = tmp_path / "c.csv"
    csv.write_text(text)
    with Transaction(root, progress=False) as tx, pytest.raises(InputError, match=message):
        concept_masks(tx, "s", "x", files=[csv])


def test_concepts_from_two_sources_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    load(root, np.zeros((4, 1), np.float32), ["a", "a", "b", "b"])
    csv = tmp_path / "c.csv"
    csv.write_text("stimulus,concept\n0,b\n")
    with Transaction(root, progress=False) as tx:
        with pytest.raises(InputError, match="concept 'b' comes from csv and label"):
            concept_masks(tx, "s", "x", labels=True, files=[csv])
        with pytest.raises(InputError, match="no wnid"):
            concept_masks(tx, "s", "x", hypernyms=True)
        with pytest.raises(InputError, match="at least one source"):
            concept_masks(tx, "s", "x")
        with pytest.raises(InputError, match="option --wnids"):
            concept_masks(tx, "s", "x", labels=True, wnids_from="imagenet-1k")


def test_commands_write_masks_and_labels(warehouse: Path, tmp_path: Path) -> None:
    csv = stimulus_csv(tmp_path)
    runner = CliRunner()
    out = runner.invoke(cli, ["ingest", "concept-masks", "--stimulus-set", "s", "--concept-set",
                              "cli", "--labels", "--file", str(csv), "--root", str(warehouse)])
    assert out.exit_code == 0, out.output
    assert "5 csv, 8 label concepts" in out.output
    out = runner.invoke(cli, ["analyse", "invert", "--model-id", "m", "--stimulus-set", "s",
                              "--layer", "l", "--concept-set", "cli", "--max-length", "2",
                              "--root", str(warehouse)])
    assert out.exit_code == 0, out.output
    assert "unit_labels: 7 units labelled" in out.output
    with unitsel.connection(warehouse) as con:
        row = con.sql("SELECT formula, concepts, typeof(concepts) FROM unit_labels WHERE "
                      "concept_set = 'cli' AND unit = 4 AND rank = 1").fetchone()
    assert row == ("k0", ["k0"], "VARCHAR[]")
    out = runner.invoke(cli, ["analyse", "invert", "--model-id", "m", "--stimulus-set", "s",
                              "--layer", "l", "--concept-set", "none-such",
                              "--root", str(warehouse)])
    assert out.exit_code == 1 and "no concept set 'none-such'" in out.output


@pytest.mark.slow
def test_invert_on_a_cluster_equals_one_process(warehouse: Path, tmp_path: Path) -> None:
    """Groups of units are tasks on a real Dask cluster (two worker processes): the rows of
    the in-process run, and the workers ran them."""
    from distributed import Client

    from .test_dask import cluster

    results = []
    with cluster(tmp_path, 2) as (address, _):
        for scheduler in (None, address):
            with Transaction(warehouse, scheduler=scheduler, progress=False) as tx:
                results.append(run_invert(tx, "m", "s", "l", "none", "mixed", Search(),
                                          group=2).drop("snapshot_id", strict=False))
        with Client(address) as client:
            ran = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.task_prefixes[
                "label_group"].state_counts["memory"])  # Dask drops the leading "_"
    assert results[0].height and results[1].equals(results[0])
    assert ran == 4


def test_labels_beside_selectivity_and_their_spearman(warehouse: Path) -> None:
    """`unit_label_selectivity` pairs each unit's best formula with its CCMAS;
    `layer_label_selectivity`'s Spearman equals SciPy's on those pairs."""
    with Transaction(warehouse, progress=False) as tx:
        result = run_invert(tx, "m", "s", "l", "none", "labels", Search())
    best = result.filter(rank=1).sort("unit")
    with unitsel.connection(warehouse) as con:
        pairs = con.sql("SELECT unit, formula, auroc, ccmas FROM unit_label_selectivity "
                        "WHERE concept_set = 'labels' AND mode = 'positive' AND subset = 'all' "
                        "ORDER BY unit").pl()
        ccmas = con.sql("SELECT unit, ccmas FROM unit_selectivity('m', 's', 'l', 'none') "
                        "ORDER BY unit").pl()
        layer = con.sql("SELECT n_units, mean_auroc, spearman_ccmas_auroc "
                        "FROM layer_label_selectivity WHERE concept_set = 'labels' "
                        "AND mode = 'positive' AND subset = 'all'").fetchall()
    assert pairs["formula"].to_list() == best["formula"].to_list()
    assert pairs["ccmas"].to_list() == ccmas["ccmas"].to_list()
    known = ccmas["ccmas"].is_not_null().to_numpy()
    x, y = ccmas["ccmas"].to_numpy()[known], best["auroc"].to_numpy()[known]
    assert layer == [(int(known.sum()), pytest.approx(y.mean(), abs=1e-12),
                      pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12))]
