"""`unitsel ingest sams`: synthetic activation-maximisation signals (s-AMS) of a layer's units
by feature visualisation, and every unit's mean activation on them (DORA Def. 6-7).

Writes PNGs under `<root>/images/sams/<model_id>/<layer>/<pool>/` and, under stimulus set
`synthetic`, the `ams` rows (one per signal, with its PNG) and `ams_activations` (mu: unit j's
mean raw activation over unit i's n signals), from which `unitsel analyse distances` computes
EA_s. Re-running replaces the layer's signals.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import click
import numpy as np
import polars as pl
from tqdm import tqdm

from unitsel import storage
from unitsel.adapters.feature_vis import Settings, generate
from unitsel.adapters.torch_model import load_model
from unitsel.analyses.distances import SYNTHETIC, mu_frame
from unitsel.files import replaced_folder
from unitsel.options import NAME, job, root_option
from unitsel.schema import AMS, AMS_ACTIVATIONS
from unitsel.warehouse import Transaction

if TYPE_CHECKING:
    from torch import nn


def ingest_sams(tx: Transaction, model: nn.Module, model_id: str, layer: str, pool: str,
                n_units: int, settings: Settings) -> pl.DataFrame:
    """Generate n s-AMS for each of the layer's `n_units` units; write PNGs, ams and mu."""
    from PIL import Image

    relative = Path("images", "sams", *(quote(v, safe="") for v in (model_id, layer, pool)))
    rows: list[pl.DataFrame] = []
    mu = np.zeros((n_units, n_units))
    count = np.zeros(n_units)
    # The PNGs move in once every signal is made, the rows with the job's commit (same names:
    # old rows point at new PNGs meanwhile); a failure before that leaves both as they were.
    with replaced_folder(storage.join(tx.place, relative.as_posix())) as staging:
        with tqdm(total=n_units * settings.n, desc=f"s-AMS {layer}", unit="signal",
                  disable=not tx.progress) as bar:
            for units, pixels, activations in generate(model, layer, pool, range(n_units),
                                                       settings, on_batch=bar.update):
                signals = np.empty(len(units), dtype=np.int32)
                for k, unit in enumerate(units):  # a batch may hold several of a unit's signals
                    signals[k] = count[unit]
                    count[unit] += 1
                np.add.at(mu, units, activations)
                uris = []
                for unit, signal, image in zip(units, signals, pixels, strict=True):
                    name = f"u{unit:05d}_s{signal}.png"
                    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image
                                    ).save(staging / name)
                    uris.append(str(relative / name))
                rows.append(pl.DataFrame({
                    "unit": units.astype(np.int32), "signal": signals,
                    "stimulus": pl.Series([None] * len(units), dtype=pl.Int32), "uri": uris,
                    "activation": activations[np.arange(len(units)), units]}))
        frame = pl.concat(rows).with_columns(setting=pl.lit(settings.label))
        partition = {"model_id": model_id, "stimulus_set": SYNTHETIC, "layer": layer,
                     "pool": pool}
        tx.write_partition(AMS, partition, frame.select([c.name for c in AMS.data_columns]))
        tx.write_partition(AMS_ACTIVATIONS, partition,
                           mu_frame(settings.label, mu / count[:, None]))
    return frame


@click.command("sams")
@click.option("--model-id", type=NAME, required=True, help="Model identifier (as ingested).")
@click.option("--arch", required=True, help="torchvision architecture name.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Local state-dict file; omit for the untrained model of --seed.")
@click.option("--layer", type=NAME, default="output", show_default=True,
              help="Module path, or 'output' for the logits.")
@click.option("--pool", default="none", show_default=True, help="none, mean, max or l2.")
@click.option("--n-units", type=int, required=True, help="Units of the layer at this pool.")
@click.option("--n", "n_signals", default=3, show_default=True, help="Signals per unit.")
@click.option("--m", "steps", default=500, show_default=True, help="Optimisation steps.")
@click.option("--size", default=224, show_default=True, help="Image size in pixels.")
@click.option("--seed", default=0, show_default=True,
              help="Seed of the untrained model and of the signals.")
@click.option("--batch-size", default=32, show_default=True)
@root_option
def sams_command(model_id: str, arch: str, weights: str | None, layer: str, pool: str,
                 n_units: int, n_signals: int, steps: int, size: int, seed: int,
                 batch_size: int, root: Path) -> None:
    """Synthetic activation-maximisation signals of a layer's units (for EA_s)."""
    model = load_model(arch, weights, seed=seed)
    settings = Settings(n=n_signals, m=steps, size=size, seed=seed, batch_size=batch_size)
    with job(root) as tx:
        frame = ingest_sams(tx, model, model_id, layer, pool, n_units, settings)
    click.echo(f"s-AMS: {frame.height} signals of {n_units} units ({settings.label}); mean "
               f"own activation {frame['activation'].mean():.3f}")
