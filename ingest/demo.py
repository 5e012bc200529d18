"""`unitsel demo`: the embedded default, end to end, in under a minute on two CPU cores.

A small CNN is trained deterministically on scikit-learn's bundled digits (8x8, upsampled to
16x16); it and a randomly initialised copy are saved under `<root>/weights/` and both are
ingested with every layer (conv layers at pool none, mean, max and l2), the stimuli and the
predictions, so trained-vs-untrained analyses exist from day one.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl

from ingest.activations import ingest_model
from ingest.sams import ingest_sams
from unitsel.adapters.feature_vis import Settings
from unitsel.adapters.torch_model import KERNEL_POOLS
from unitsel.analyses.atlas import run_atlas
from unitsel.analyses.distances import MEASURES, SYNTHETIC, run_unit_distances
from unitsel.analyses.mantel import run_mantel
from unitsel.analyses.outliers import run_outliers
from unitsel.analyses.semantics import run_semantic_distances
from unitsel.cli import duckdb_command, root_option
from unitsel.concepts import ingest_concepts

if TYPE_CHECKING:
    import torch
    from torch import nn

STIMULUS_SET = "digits"
CLASSES = [str(d) for d in range(10)]
IMAGE_SIZE = 16
# Post-ReLU layers are recorded beside the conv / linear outputs: Gale et al. and Lado & Dobs
# analyse activations after the non-linearity.
LOGITS = "classifier.3"
# The digits as WordNet numbers: zero.n.02, one.n.01, …, nine.n.01 (all hyponyms of digit.n.01).
DIGIT_WNIDS = ["n13742358", "n13742573", "n13743269", "n13744044", "n13744304", "n13744521",
               "n13744722", "n13744916", "n13745086", "n13745270"]
LAYERS = ["features.0", "features.1", "features.3", "features.4",
          "classifier.1", "classifier.2", "classifier.3", "prob"]
PREPROCESSING = {
    "source": "sklearn.datasets.load_digits", "scale": "pixel / 16",
    "upsample": f"bilinear 8x8 -> {IMAGE_SIZE}x{IMAGE_SIZE}", "normalise": "(x - 0.5) / 0.5",
}


def demo_cnn(n_classes: int = 10) -> nn.Module:
    """features: conv(8) relu pool conv(16) relu pool; classifier: flatten linear(32) relu
    linear(n_classes). torch is imported here, not at module level, to keep `unitsel --help`
    fast."""
    from torch import nn

    class DemoCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            )
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, n_classes)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.features(x))  # type: ignore[no-any-return]

    return DemoCNN()


def digits() -> tuple[torch.Tensor, pl.DataFrame]:
    """All 1,797 digits as (N, 1, 16, 16) tensors, and their labels frame."""
    import torch
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = torch.nn.functional.interpolate(x, size=IMAGE_SIZE, mode="bilinear", align_corners=False)
    labels = pl.DataFrame({
        "stimulus": pl.Series(range(len(data.target)), dtype=pl.Int32),
        "uri": pl.Series([None] * len(data.target), dtype=pl.String),
        "label": [str(t) for t in data.target],
        "wnid": pl.Series([None] * len(data.target), dtype=pl.String),
    })
    return (x - 0.5) / 0.5, labels


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 12,
          progress: bool = True) -> nn.Module:
    """Deterministic training: fixed seed, one thread, fixed batch order."""
    import torch
    from tqdm import tqdm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        for _ in tqdm(range(epochs), desc="training the demo CNN", unit="epoch",
                      disable=not progress):
            for index in torch.randperm(len(x), generator=generator).split(64):
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
                loss.backward()
                optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def build_models(weights_dir: Path, progress: bool = True) -> dict[str, tuple[nn.Module, Path]]:
    """Train the demo CNN on 4 of every 5 digits; save it and an untrained copy."""
    import torch

    x, labels = digits()
    y = torch.tensor([int(v) for v in labels["label"]])
    train_rows = torch.arange(len(x)) % 5 != 0
    torch.manual_seed(0)
    trained = train(demo_cnn(), x[train_rows], y[train_rows], progress=progress)
    torch.manual_seed(1)
    untrained = demo_cnn().eval()
    return {state: (model, save_weights(model, weights_dir / f"demo-cnn-{state}.pt"))
            for state, model in (("trained", trained), ("untrained", untrained))}


def save_weights(model: nn.Module, path: Path) -> Path:
    """Save the state dict through a temporary file and one rename."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return path


def run_semantics(root: Path, models: dict[str, nn.Module], progress: bool = True) -> list[str]:
    """DORA's chain on the logits: concepts, semantic baselines, s-AMS, every functional
    distance, Mantel tests, outliers and the atlas (EA_s layer-wise)."""
    ingest_concepts(root, STIMULUS_SET, pl.DataFrame({"label": CLASSES, "wnid": DIGIT_WNIDS}))
    run_semantic_distances(root, STIMULUS_SET, progress=progress)
    settings = Settings(n=3, m=64, size=IMAGE_SIZE, channels=1, mean=(0.5,), std=(0.5,),
                        batch_size=30)
    for model_id, model in models.items():
        ingest_sams(model, model_id, LOGITS, "none", len(CLASSES), settings, root, progress)
        run_unit_distances(root, model_id, STIMULUS_SET, LOGITS, "none", MEASURES, n=30, d=50)
        run_outliers(root, model_id, SYNTHETIC, LOGITS, "none", "ea_s_layerwise",
                     contamination=0.1, progress=progress)
        run_atlas(root, model_id, SYNTHETIC, LOGITS, "none", "ea_s_layerwise", STIMULUS_SET)
    result = run_mantel(root, STIMULUS_SET, tuple(models), LOGITS, progress=progress)
    best = result.filter(pl.col("r").is_not_null()).sort("r", descending=True).head(1)
    return [f"Mantel tests: {result.height} (digits are WordNet siblings, so path/lch/wup are "
            "constant and their r is NULL); best: " + ", ".join(
                f"{row['model_id']} {row['measure']} vs {row['baseline']} r={row['r']:.2f}"
                for row in best.iter_rows(named=True))]


def run_demo(root: Path, progress: bool = True) -> list[str]:
    """Build and ingest both demo models and run the semantic chain; return lines to print."""
    started = time.perf_counter()
    x, labels = digits()
    lines = []
    models = {}
    for state, (model, path) in build_models(root / "weights", progress).items():
        model_id = f"demo-cnn-{state}"
        lines.append(ingest_model(
            model, x, labels, model_id=model_id, stimulus_set=STIMULUS_SET,
            root=root, architecture="unitsel.demo_cnn", state=state,
            preprocessing=json.dumps(PREPROCESSING, sort_keys=True), source=str(path.resolve()),
            class_names=CLASSES, layers=LAYERS, pools=("none", *KERNEL_POOLS), batch_size=256,
            progress=progress,
        ))
        models[model_id] = model
    lines += run_semantics(root, models, progress)
    from ingest.planted import run_planted  # these import this module
    from ingest.study_demo import run_studies

    lines += run_planted(root, progress)
    lines += run_studies(root, models["demo-cnn-trained"], STIMULUS_SET, LOGITS, CLASSES,
                         list(models))
    from ingest.concepts_demo import run_concepts

    lines += run_concepts(root, models, x * 0.5 + 0.5, labels["label"].to_list(),
                          STIMULUS_SET, LOGITS, "features.3", progress)
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
    from unitsel.warehouse import connection

    for line in run_demo(root):
        click.echo(line)
    if faces:
        from ingest.faces import run_faces

        for line in run_faces(root):
            click.echo(line)
    if imagenet:
        from ingest.imagenet import run_imagenet

        for line in run_imagenet(root):
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
