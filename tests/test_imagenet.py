"""`unitsel demo --imagenet` end to end at toy settings: MobileNetV2's and EfficientNet-Lite0's
1000 real logits through every semantic table, answered from the DuckDB CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.demos.imagenet import EFFICIENTNET_ID, MODEL_ID, PHOTOS, Run, run_imagenet
from unitsel.adapters.feature_vis import Settings

from .conftest import duckdb_csv

pytestmark = pytest.mark.slow  # minutes of work: `make test` runs it, `make test-quick` not

TOY = Run(crops=200, sams=Settings(n=1, m=1, size=32, batch_size=250), n=10, d=20,
          permutations=9)


def test_imagenet_chain_fills_the_tables_and_follows_wordnet(root: Path) -> None:
    run_imagenet(root, TOY, progress=False)
    # Real weights, preprocessing and class order: top-1 on foolbox's 20 labelled ImageNet
    # photos far above chance (1 in 1000); MobileNetV2 gets 18, EfficientNet-Lite0 17.
    top1 = dict(duckdb_csv(root, "SELECT model_id, sum(is_correct::INTEGER) FROM predictions "
                                 f"WHERE stimulus_set = '{PHOTOS}' GROUP BY ALL"))
    assert int(top1[MODEL_ID]) >= 17 and int(top1[EFFICIENTNET_ID]) >= 15
    for model_id in (MODEL_ID, EFFICIENTNET_ID):
        rows = duckdb_csv(root, "SELECT measure, baseline, r, n FROM mantel_results "
                                f"WHERE model_id = '{model_id}' ORDER BY measure, baseline")
        assert len(rows) == 7 * 4
        # GloVe covers 977 of the 1000 classes; WordNet all of them.
        assert {b: n for _, b, _, n in rows} == {"glove-6b-50d": "977", "lch": "1000",
                                                  "path": "1000", "wup": "1000"}
        r = {(measure, baseline): float(value) for measure, baseline, value, _ in rows}
        # Real networks' logits follow WordNet even on 200 non-ImageNet crops.
        assert all(r[("pearson", b)] > 0.1 for b in ("path", "lch", "wup")), model_id
    [counts] = duckdb_csv(root, (
        "SELECT (SELECT count(*) FROM unit_distances), (SELECT count(*) FROM unit_atlas "
        "WHERE hypernym IS NOT NULL), (SELECT count(*) FROM unit_outliers WHERE is_outlier), "
        "(SELECT count(*) FROM ams WHERE uri IS NOT NULL)"))
    assert counts == [str(2 * 7 * 499500), "2000", str(2 * 5 * 10), "2000"]
