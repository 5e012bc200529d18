"""Ratings and annotations ingest, Gale's Table 1, and significant features."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from torch import nn

import unitsel
from ingest.people import ingest_readout, read_annotations, read_ratings, write_study
from unitsel.analyses.ratings import run_rating_summary
from unitsel.concepts import ingest_concepts
from unitsel.errors import InputError
from unitsel.warehouse import scan

from .conftest import duckdb_csv
from .layers import load

WNIDS = {"dog": "n02084071", "cat": "n02121620", "car": "n02958343"}


def _warehouse(root: Path) -> None:
    """Layer 'l' of model 'm': unit 0 fires for dogs, 1 for cats, 2 for cars."""
    labels = [name for name in WNIDS for _ in range(4)]
    acts = np.array([[float(label == name) + 0.1 * i for name in WNIDS]
                     for i, label in enumerate(labels)], dtype=np.float32)
    load(root, acts, labels)
    with unitsel.Transaction(root) as tx:
        tx.write(pl.DataFrame({"model_id": ["m"], "layer": ["l"], "pool": ["none"],
                               "kind": ["Linear"], "n_units": [3], "shape": [[3]],
                               "position": [0]},
                              schema_overrides={"n_units": pl.Int32, "position": pl.Int32,
                                                "shape": pl.List(pl.Int32)}), "layers")
        ingest_concepts(tx, "toy", pl.DataFrame({"label": list(WNIDS),
                                                 "wnid": list(WNIDS.values())}))


RATINGS_CSV = """rater_id,model_id,layer,pool,unit,trial,response,name
r1,m,l,none,0,1,yes,dog
r2,m,l,none,0,1,yes,dog
r3,m,l,none,0,1,yes,animal
r4,m,l,none,0,1,yes,car
r5,m,l,none,0,1,yes,
r1,m,l,none,1,2,yes,cat
r2,m,l,none,1,2,yes,cat
r3,m,l,none,1,2,yes,feline
r4,m,l,none,1,2,yes,bird
r5,m,l,none,1,2,no,
r1,m,l,none,2,3,yes,car
r2,m,l,none,2,3,yes,car
r3,m,l,none,2,3,no,
r4,m,l,none,2,3,no,
r5,m,l,none,2,3,no,
"""


def test_gale_table_1_hand_worked(root: Path, tmp_path: Path) -> None:
    _warehouse(root)
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS_CSV)
    with unitsel.Transaction(root) as tx:
        write_study(tx, "gale", "ratings", read_ratings(tx, path, "gale"), False, "test")
    with unitsel.Transaction(root) as tx:
        row = run_rating_summary(tx, "gale", "s", "toy").row(0, named=True)
    assert (row["n_judgements"], row["n_units"]) == (15, 3)
    assert row["pct_yes"] == pytest.approx(100 * 11 / 15)
    assert row["pct_yes_se"] == pytest.approx(100 * np.sqrt(11 / 15 * 4 / 15 / 15))
    assert row["pct_units_80"] == pytest.approx(100 * 2 / 3)  # units 0 and 1
    # Units 0 and 1: name pairs dog-dog, dog-animal (x2), cat-cat, cat-feline (x2) match, 6
    # of 12; names matching the top class: dog, dog, animal, cat, cat, feline: 6 of 8.
    assert row["pct_overlap_humans"] == pytest.approx(50.0)
    assert row["pct_overlap_top_class"] == pytest.approx(75.0)
    assert row["pct_overlap_ccmas_class"] == pytest.approx(75.0)
    with unitsel.Transaction(root) as tx:
        exact = run_rating_summary(tx, "gale", "s", "toy", "exact").row(0, named=True)
    assert exact["pct_overlap_humans"] == pytest.approx(100 * 2 / 12)
    assert exact["pct_overlap_top_class"] == pytest.approx(50.0)
    assert scan("rating_summary", root).collect().height == 1  # re-run replaced


@pytest.mark.parametrize(("edit", "message"), [
    (("r2,m,l,none,0,1", "r2,m,l,none,9,1"), r"row 3, column 'unit'.*outside the layer"),
    (("r1,m,l,none,1,2", "r1,m,l,none,1,1"), r"column 'trial'.*trial twice"),
    (("r3,m,l,none,0,1", ",m,l,none,0,1"), r"row 4, column 'rater_id'.*empty rater"),
    (("r4,m,l,none,0,1", "r4,m,x,none,0,1"), r"row 5, column 'layer'.*no such model"),
    (("yes,animal", "maybe,animal"), r"row 4, column 'response'"),
])
def test_bad_ratings_are_located_and_nothing_is_written(root: Path, tmp_path: Path,
                                                        edit: tuple[str, str],
                                                        message: str) -> None:
    _warehouse(root)
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS_CSV.replace(*edit, 1))
    with pytest.raises(InputError, match=message), unitsel.Transaction(root) as tx:
        read_ratings(tx, path, "gale")
    assert scan("ratings", root).collect().is_empty()


def test_bad_annotations_are_located(root: Path, tmp_path: Path) -> None:
    _warehouse(root)
    path = tmp_path / "annotations.csv"
    header = "annotator_id,model_id,stimulus_set,stimulus,label,feature,concept\n"
    path.write_text(header + "a1,m,s,0,dog,1,ear\na1,m,s,99,dog,1,ear\n")
    with unitsel.Transaction(root) as tx:
        with pytest.raises(InputError, match=r"row 3, column 'stimulus'"):
            read_annotations(tx, path, "n")
        path.write_text(header + "a1,m,s,0,dog,1,ear\na1,m,s,0,dog,1,\n")
        with pytest.raises(InputError, match=r"row 3, column 'feature'.*twice"):
            read_annotations(tx, path, "n")
        path.write_text(header + "a1,m,s,0,dog,1,ear\n ,m,s,1,dog,1,\n")
        with pytest.raises(InputError, match=r"row 3, column 'annotator_id'"):
            read_annotations(tx, path, "n")
        path.write_text(header + "a1,m,s,0,dog,1,ear\na2,m,s,0,dog,1,\n")
        frame = read_annotations(tx, path, "n")
    assert frame["concept"].to_list() == ["ear", None]


@pytest.mark.parametrize("seed", range(4))
def test_significant_features_are_the_minimal_set(root: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_stimuli, n_features, classes = 12, 6, ["a", "b", "c"]
    acts = np.maximum(rng.normal(size=(n_stimuli, n_features)), 0).astype(np.float32)
    load(root, acts, [classes[i % 3] for i in range(n_stimuli)])
    readout = nn.Linear(n_features, len(classes))
    with unitsel.Transaction(root) as tx:
        ingest_readout(tx, readout, "m", "fc", classes)
    weights = readout.weight.detach().double().numpy()
    with unitsel.connection(root) as con:
        found = con.sql("SELECT stimulus, label, list(feature ORDER BY rank) AS features "
                        "FROM significant_features('m', 's', 'fc', 'l') GROUP BY ALL").pl()
    got = {(r["stimulus"], r["label"]): r["features"] for r in found.iter_rows(named=True)}
    for stimulus, (k, label) in itertools.product(range(n_stimuli), enumerate(classes)):
        terms = {f: weights[k, f] * float(acts[stimulus, f]) for f in range(n_features)
                 if weights[k, f] > 0 and weights[k, f] * float(acts[stimulus, f]) > 0}
        score = sum(terms.values())
        if not terms:
            assert (stimulus, label) not in got
            continue
        # Brute force: the smallest subset size whose sum reaches 90 % of the score.
        size = min(len(s) for n in range(1, len(terms) + 1)
                   for s in itertools.combinations(terms, n)
                   if sum(terms[f] for f in s) >= 0.9 * score - 1e-12)
        chosen = got[(stimulus, label)]
        assert len(chosen) == size
        assert sum(terms[f] for f in chosen) >= 0.9 * score - 1e-9


def test_demo_study_package_and_simulated_studies(demo_root: Path, tmp_path: Path) -> None:
    from PIL import Image

    from unitsel.study import TILE, export_study

    folder = demo_root / "studies" / "simulated-gale-ratings"
    manifest = pl.read_csv(folder / "manifest.csv")
    assert manifest.height == 20 and manifest["list"].value_counts()["count"].to_list() == [10, 10]
    row = manifest.filter(model_id="demo-cnn-trained", unit=7).row(0, named=True)
    panel = np.asarray(Image.open(folder / "panels" / row["panel"]))
    with unitsel.connection(demo_root) as con:
        first = con.sql("SELECT uri FROM ams WHERE model_id = 'demo-cnn-trained' AND "
                        "layer = 'classifier.3' AND unit = 7 AND uri IS NOT NULL "
                        "ORDER BY signal LIMIT 1").fetchone()[0]  # type: ignore[index]
        studies = dict(con.sql("SELECT study_id, simulated FROM studies").fetchall())
        counts = {t: con.sql(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t in ("ratings", "annotations", "rating_summary", "annotation_coverage",
                            "annotation_purity", "annotation_agreement", "annotation_matches",
                            "naming_counts", "explanation_summaries", "readout_weights")}
    tile = np.asarray(Image.open(demo_root / first).convert("RGB").resize((TILE, TILE)))
    assert np.array_equal(panel[:TILE, :TILE], tile)
    assert studies == {"simulated-gale-ratings": True, "simulated-naming": True}
    assert counts["ratings"] == 20 * 10 and counts["rating_summary"] == 2
    assert counts["readout_weights"] == 32 * 10
    assert all(n > 0 for n in counts.values())
    # A ratings file with an unknown panel is refused, located.
    path = tmp_path / "ratings.csv"
    path.write_text("rater_id,panel,trial,response,name\nr1,nope.png,1,yes,dog\n")
    with pytest.raises(InputError, match=r"row 2, column 'panel'"), \
            unitsel.Transaction(demo_root) as tx:
        read_ratings(tx, path, "simulated-gale-ratings")
    with pytest.raises(InputError, match="no image files"), unitsel.Transaction(demo_root) as tx:
        export_study(tx, "x", [("demo-cnn-trained", "classifier.3", "none", 0)],
                     tmp_path / "study", source="top", stimulus_set="digits")
    assert not (tmp_path / "study").exists()


def test_json_ratings_equal_csv(root: Path, tmp_path: Path) -> None:
    _warehouse(root)
    csv = tmp_path / "ratings.csv"
    csv.write_text(RATINGS_CSV)
    records = pl.read_csv(csv, infer_schema=False)
    (tmp_path / "ratings.json").write_text(records.write_json())
    with unitsel.Transaction(root) as tx:
        assert read_ratings(tx, tmp_path / "ratings.json", "g").equals(read_ratings(tx, csv, "g"))


def test_people_tables_answer_from_the_duckdb_cli(demo_root: Path) -> None:
    [row] = duckdb_csv(demo_root, (
        "SELECT (SELECT count(*) FROM rating_summary WHERE pct_yes > 0), "
        "(SELECT count(DISTINCT label) FROM annotation_agreement WHERE d2_agreement "
        ">= d1_agreement), (SELECT count(*) FROM significant_features('demo-cnn-trained', "
        "'digits', 'classifier.3', 'classifier.2') WHERE rank = 1)"))
    # Both models rated; D = 2 is never below D = 1 for any of the 10 classes; one top
    # feature per (stimulus, class) with a positive score.
    n_models, n_labels, n_top = (int(v) for v in row)
    assert (n_models, n_labels) == (2, 10) and n_top > 1797
