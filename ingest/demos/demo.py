"""`unitsel demo`: the embedded default, end to end, in under a minute on two CPU cores.

A small CNN is trained deterministically on scikit-learn's bundled digits (8x8, upsampled to
16x16); it and a randomly initialised copy are saved under `<root>/weights/` and both are
ingested with every layer (conv layers at pool none, mean, max and l2), the stimuli and the
predictions, so trained-vs-untrained analyses exist from day one.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl

from ingest.activations import ingest_model
from ingest.demos import cnn, steps
from ingest.demos.concepts_demo import run_concepts
from ingest.demos.faces import run_faces
from ingest.demos.imagenet import run_imagenet
from ingest.demos.invert_demo import run_invert_demo
from ingest.demos.planted import MODEL_ID as PLANTED_MODEL
from ingest.demos.planted import PLANTED_UNITS, run_planted
from ingest.demos.planted import STIMULUS_SET as PLANTED_SET
from ingest.demos.study_demo import NAMING_STUDY, run_studies
from ingest.sams import ingest_sams
from unitsel.adapters.feature_vis import Settings
from unitsel.adapters.torch_model import KERNEL_POOLS
from unitsel.analyses.atlas import run_atlas
from unitsel.analyses.distances import MEASURES, SYNTHETIC, run_unit_distances
from unitsel.analyses.mantel import run_mantel
from unitsel.analyses.outliers import run_outliers
from unitsel.analyses.semantics import run_semantic_distances
from unitsel.cli import duckdb_command
from unitsel.concepts import ingest_concepts
from unitsel.options import root_option
from unitsel.warehouse import connection

if TYPE_CHECKING:
    from torch import nn

STIMULUS_SET = "digits"
# The digits as WordNet numbers: zero.n.02, one.n.01, …, nine.n.01 (all hyponyms of digit.n.01).
DIGIT_WNIDS = ["n13742358", "n13742573", "n13743269", "n13744044", "n13744304", "n13744521",
               "n13744722", "n13744916", "n13745086", "n13745270"]
# Post-ReLU layers are recorded beside the conv / linear outputs: Gale et al. and Lado & Dobs
# analyse activations after the non-linearity.
LAYERS = ["features.0", "features.1", "features.3", "features.4",
          "classifier.1", "classifier.2", "classifier.3", "prob"]


def build_models(weights_dir: Path, progress: bool = True) -> dict[str, tuple[nn.Module, Path]]:
    """Train the demo CNN on 4 of every 5 digits; save it and an untrained copy."""
    import torch

    x, labels = cnn.digits()
    y = torch.tensor([int(v) for v in labels["label"]])
    train_rows = torch.arange(len(x)) % 5 != 0
    torch.manual_seed(0)
    trained = cnn.train(cnn.demo_cnn(), x[train_rows], y[train_rows], progress=progress)
    torch.manual_seed(1)
    untrained = cnn.demo_cnn().eval()
    return {state: (model, cnn.save_weights(model, weights_dir / f"demo-cnn-{state}.pt"))
            for state, model in (("trained", trained), ("untrained", untrained))}


def run_semantics(root: Path, models: dict[str, nn.Module], progress: bool = True) -> list[str]:
    """DORA's chain on the logits: concepts, semantic baselines, s-AMS, every functional
    distance, Mantel tests, outliers and the atlas (EA_s layer-wise); each step a job."""
    step = steps(root, progress)
    step(ingest_concepts, STIMULUS_SET, pl.DataFrame({"label": cnn.CLASSES, "wnid": DIGIT_WNIDS}))
    step(run_semantic_distances, STIMULUS_SET)
    settings = Settings(n=3, m=64, size=cnn.IMAGE_SIZE, channels=1, mean=(0.5,), std=(0.5,),
                        batch_size=30)
    for model_id, model in models.items():
        step(ingest_sams, model, model_id, cnn.LOGITS, "none", len(cnn.CLASSES), settings)
        step(run_unit_distances, model_id, STIMULUS_SET, cnn.LOGITS, "none", MEASURES, n=30, d=50)
        step(run_outliers, model_id, SYNTHETIC, cnn.LOGITS, "none", "ea_s_layerwise",
             contamination=0.1)
        step(run_atlas, model_id, SYNTHETIC, cnn.LOGITS, "none", "ea_s_layerwise", STIMULUS_SET)
    result = step(run_mantel, STIMULUS_SET, tuple(models), cnn.LOGITS)
    best = result.filter(pl.col("r").is_not_null()).sort("r", descending=True).head(1)
    return [f"Mantel tests: {result.height} (digits are WordNet siblings, so path/lch/wup are "
            "constant and their r is NULL); best: " + ", ".join(
                f"{row['model_id']} {row['measure']} vs {row['baseline']} r={row['r']:.2f}"
                for row in best.iter_rows(named=True))]


def run_demo(root: Path, progress: bool = True) -> list[str]:
    """Build and ingest both demo models and run the semantic chain; return lines to print."""
    started = time.perf_counter()
    x, labels = cnn.digits()
    lines = []
    models = {}
    for state, (model, path) in build_models(root / "weights", progress).items():
        model_id = f"demo-cnn-{state}"
        lines.append(steps(root, progress)(
            ingest_model, model, x, labels, model_id=model_id, stimulus_set=STIMULUS_SET,
            architecture="unitsel.demo_cnn", state=state,
            preprocessing=json.dumps(cnn.PREPROCESSING, sort_keys=True), source=str(path.resolve()),
            class_names=cnn.CLASSES, layers=LAYERS, pools=("none", *KERNEL_POOLS), batch_size=256))
        models[model_id] = model
    lines += run_semantics(root, models, progress)
    lines += run_planted(root, progress)
    lines += run_studies(root, models["demo-cnn-trained"], STIMULUS_SET, cnn.LOGITS, cnn.CLASSES,
                         list(models))
    lines += run_concepts(root, models, x * 0.5 + 0.5, labels["label"].to_list(),
                          STIMULUS_SET, cnn.LOGITS, "features.3", progress)
    lines += run_invert_demo(root, STIMULUS_SET, cnn.CLASSES, cnn.LOGITS, list(models),
                             (PLANTED_MODEL, PLANTED_SET, PLANTED_UNITS),
                             (NAMING_STUDY, "classifier.2"), progress)
    lines.append(f"demo built in {time.perf_counter() - started:.1f} s")
    return lines


@click.command()
@click.option("--faces", is_flag=True,
              help="Also run Lado & Dobs' face analyses: lfw faces on an ImageNet-trained and "
                   "an untrained MobileNetV2 (a few minutes).")
@click.option("--imagenet", is_flag=True,
              help="Also run DORA's chain on MobileNetV2's 1000 ImageNet logits (a few "
                   "minutes).")
@root_option
def demo(faces: bool, imagenet: bool, root: Path) -> None:
    """Train the demo CNN on the bundled digits and ingest it, trained and untrained."""
    for run in (run_demo, *[run_faces] * faces, *[run_imagenet] * imagenet):
        for line in run(root):
            click.echo(line)
    with connection(root) as con:
        click.echo(con.sql(
            "SELECT m.model_id, m.state, round(avg(p.is_correct::INT), 3) AS accuracy "
            "FROM models m JOIN predictions p USING (model_id) GROUP BY ALL ORDER BY 1").pl())
        click.echo(con.sql(
            "SELECT model_id, layer, pool, n_units FROM layers ORDER BY ALL").pl()
            .pivot(on="model_id", index=["layer", "pool"], values="n_units"))
    for line in closing_lines(root):
        click.echo(line)


def closing_lines(root: Path) -> list[str]:
    """The demo's last words: where to look next, in SQL and in the dashboards."""
    return ["Open it in the DuckDB CLI:", "  " + duckdb_command(root),
            "  then: SELECT layer, pool, count(*) FROM activations GROUP BY ALL;",
            "Or look at it in the dashboards (http://localhost:8501):",
            f"  {Path(sys.executable).with_name('unitsel')} dashboard --root "
            f"{shlex.quote(str(Path(root).resolve()))}"]
