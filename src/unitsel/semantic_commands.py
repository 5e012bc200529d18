"""`unitsel wordnet` and the DORA analyses of `unitsel analyse` (semantic baselines, functional
distances, Mantel tests, outliers, atlas); registered through entry points (pyproject.toml)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
import polars as pl

from unitsel.options import NAME, F, job, layer_options, root_option


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(v.strip() for v in text.split(",") if v.strip())


@click.command("wordnet")
@click.option("--source", type=click.Path(file_okay=False, path_type=Path),
              default=Path("/usr/share/wordnet"), show_default=True,
              help="Debian's WordNet 3.0 files (packages wordnet-base, wordnet-sense-index).")
def wordnet_command(source: Path) -> None:
    """Install WordNet 3.0 for NLTK in this environment (offline, from Debian's files)."""
    from unitsel import wordnet

    target = wordnet.install(source)
    wordnet.wordnet.cache_clear()
    dog = wordnet.synset("n02084071")
    click.echo(f"WordNet installed in {target}; n02084071 = {dog.name()}")


def _measure_option(default: str, help_text: str) -> Callable[[F], F]:
    return click.option("--measures", default=default, show_default=True, help=help_text)


@click.command("semantic")
@click.option("--concept-set", type=NAME, required=True,
              help="As ingested by `unitsel ingest concepts`.")
@_measure_option("path,lch,wup,vectors", "Comma-separated semantic measures (vectors: the "
                 "word-vector baseline).")
@click.option("--vectors", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Word vectors (word2vec format); default: GloVe 6B 50-d (glove-6b-50d).")
@click.option("--vectors-name", default=None,
              help="Measure name of --vectors' distances (default: the file's stem).")
@click.option("--binary", is_flag=True, help="--vectors is word2vec binary.")
@click.option("--glove", is_flag=True, help="--vectors is GloVe text (no header line).")
@root_option
def semantic(concept_set: str, measures: str, vectors: Path | None, vectors_name: str | None,
             binary: bool, glove: bool, root: Path) -> None:
    """WordNet and word-vector distances between every pair of concepts -> semantic_distances."""
    from unitsel.analyses.semantics import load_vectors, run_semantic_distances

    given = () if vectors is None else (load_vectors(vectors, binary, glove),
                                        vectors_name or vectors.stem, str(vectors.resolve()))
    with job(root) as tx:
        result = run_semantic_distances(tx, concept_set, _names(measures) or (), *given)
    click.echo(result.group_by("measure", maintain_order=True).agg(
        pairs=pl.len(), mean_distance=pl.col("distance").mean()))


@click.command("distances")
@layer_options("Set of the data-aware measures.")
@_measure_option("minkowski,pearson,spearman,ea_n_pairwise,ea_n_layerwise",
                 "Comma-separated; ea_s_* need `unitsel ingest sams` first.")
@click.option("--p", default=1.0, show_default=True, help="Minkowski p.")
@click.option("--n", default=50, show_default=True, help="EA_n: n-AMS per unit.")
@click.option("--d", default=200, show_default=True, help="EA_n: block size (depth).")
@click.option("--seed", default=0, show_default=True, help="EA_n: shuffle of the stimuli.")
@root_option
def distances(model_id: str, stimulus_set: str, layer: str, pool: str, measures: str, p: float,
              n: int, d: int, seed: int, root: Path) -> None:
    """Functional distances between a layer's units -> unit_distances (+ ams for EA_n)."""
    from unitsel.analyses.distances import run_unit_distances

    with job(root) as tx:
        result = run_unit_distances(tx, model_id, stimulus_set, layer, pool,
                                    _names(measures) or (), p=p, n=n, d=d, seed=seed)
    click.echo(result.group_by("measure", "setting", maintain_order=True).agg(
        pairs=pl.len(), mean_distance=pl.col("distance").mean()))


@click.command("mantel")
@click.option("--concept-set", type=NAME, required=True, help="Concepts of the layer's units.")
@click.option("--model-id", "model_ids", type=NAME, required=True, multiple=True,
              help="Repeat for a batch over models.")
@click.option("--layer", type=NAME, default="output", show_default=True)
@click.option("--pool", default="none", show_default=True)
@click.option("--measures", default=None, help="Functional measures; default all stored.")
@click.option("--baselines", default=None, help="Semantic measures; default all stored.")
@click.option("--method", type=click.Choice(["pearson", "spearman"]), default="pearson",
              show_default=True)
@click.option("--alternative", type=click.Choice(["two-sided", "greater", "less"]),
              default="two-sided", show_default=True)
@click.option("--permutations", default=999, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--conversion", type=click.Choice(["distance", "distance_max_scaled"]),
              default="distance", show_default=True, help="Baseline column.")
@click.option("--workers", default=1, show_default=True,
              help="Local Dask workers (one BLAS thread each); 1 lets BLAS use every core.")
@root_option
def mantel(concept_set: str, model_ids: tuple[str, ...], layer: str, pool: str,
           measures: str | None, baselines: str | None, method: str, alternative: str,
           permutations: int, seed: int, conversion: str, workers: int, root: Path) -> None:
    """Mantel tests, every functional measure x baseline x model -> mantel_results."""
    from unitsel.analyses.mantel import run_mantel

    with job(root) as tx:
        result = run_mantel(tx, concept_set, model_ids, layer, pool, _names(measures),
                            _names(baselines), method, alternative, permutations, seed,
                            conversion, workers)
    click.echo(result.select("model_id", "stimulus_set", "measure", "baseline", "r", "p", "n"))


@click.command("outliers")
@layer_options("'synthetic' for EA_s.")
@click.option("--measure", required=True, help="Stored functional measure.")
@click.option("--detectors", default="lof,iforest,ocsvm,abod,feature_bagging",
              show_default=True,
              help="lof: scikit-learn's LOF on the distance matrix (DORA's protocol); the "
                   "others (and lof_rows) score each unit's row of distances (PyOD).")
@click.option("--contamination", default=0.01, show_default=True)
@click.option("--truth", default=None, help="Comma-separated true outlier units (AUC).")
@click.option("--repeats", default=100, show_default=True, help="AUC runs (random states).")
@root_option
def outliers(model_id: str, stimulus_set: str, layer: str, pool: str, measure: str,
             detectors: str, contamination: float, truth: str | None, repeats: int,
             root: Path) -> None:
    """Outlier units from a distance matrix -> unit_outliers (+ outlier_auc with --truth)."""
    from unitsel.analyses.outliers import run_outliers

    truth_units = None if truth is None else [int(u) for u in _names(truth) or ()]
    with job(root) as tx:
        result = run_outliers(tx, model_id, stimulus_set, layer, pool, measure,
                              _names(detectors) or (), contamination, truth_units, repeats)
    flagged = result.filter("is_outlier").group_by("detector", maintain_order=True).agg(
        units=pl.col("unit").sort())
    click.echo(flagged)


@click.command("atlas")
@layer_options("'synthetic' for EA_s.")
@click.option("--measure", required=True, help="Stored functional measure.")
@click.option("--concept-set", type=NAME, default=None,
              help="Colour output units by their hypernym.")
@click.option("--depth", default=6, show_default=True, help="Hypernym depth (0 = entity).")
@click.option("--seed", default=0, show_default=True)
@root_option
def atlas(model_id: str, stimulus_set: str, layer: str, pool: str, measure: str,
          concept_set: str | None, depth: int, seed: int, root: Path) -> None:
    """UMAP representation atlas from a distance matrix -> unit_atlas."""
    from unitsel.analyses.atlas import run_atlas

    with job(root) as tx:
        result = run_atlas(tx, model_id, stimulus_set, layer, pool, measure, concept_set, depth,
                           seed)
    click.echo(f"unit_atlas: {result.height} units of {layer} ({measure})")
