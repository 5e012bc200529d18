"""`unitsel demo --imagenet` end to end at toy settings: MobileNetV2's 1000 real logits through
every semantic table, answered from the DuckDB CLI."""

from __future__ import annotations

from pathlib import Path

from ingest.imagenet import MODEL_ID, Run, run_imagenet
from unitsel.adapters.feature_vis import Settings

from .conftest import duckdb_csv

TOY = Run(crops=200, sams=Settings(n=1, m=1, size=32, batch_size=250), n=10, d=20,
          permutations=9)


def test_imagenet_chain_fills_the_tables_and_follows_wordnet(root: Path) -> None:
    run_imagenet(root, TOY, progress=False)
    rows = duckdb_csv(root, "SELECT measure, baseline, r, n FROM mantel_results "
                            f"WHERE model_id = '{MODEL_ID}' ORDER BY measure, baseline")
    assert len(rows) == 7 * 4 and {n for *_, n in rows} == {"1000"}
    r = {(measure, baseline): float(value) for measure, baseline, value, _ in rows}
    # The real network's logits follow WordNet even on 200 non-ImageNet crops.
    assert all(r[("pearson", b)] > 0.15 for b in ("path", "lch", "wup"))
    [counts] = duckdb_csv(root, (
        "SELECT (SELECT count(*) FROM unit_distances), (SELECT count(*) FROM unit_atlas "
        "WHERE hypernym IS NOT NULL), (SELECT count(*) FROM unit_outliers WHERE is_outlier), "
        "(SELECT count(*) FROM ams WHERE uri IS NOT NULL)"))
    assert counts == [str(7 * 499500), "1000", str(5 * 10), "1000"]
