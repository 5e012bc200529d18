"""The representation atlas (DORA Fig. 6): UMAP 2-D coordinates of a layer's units from a
precomputed functional distance matrix, coloured by the WordNet hypernym of each unit's concept.

Output units of a concept set (unit i = class index i) get their concept's ancestor at
`depth` on its shortest hypernym path (ties: by synset names); depth 6 splits ImageNet-1k into
groups such as animal.n.01, device.n.01, container.n.01, clothing.n.01.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl

from unitsel import wordnet
from unitsel.analyses.distances import distance_matrix
from unitsel.analyses.semantics import concept_set_frame
from unitsel.errors import InputError
from unitsel.schema import UNIT_ATLAS
from unitsel.warehouse import Transaction


def hypernym(wnid: str, depth: int) -> str:
    """The concept's ancestor at `depth` (0 = entity) on its shortest hypernym path."""
    paths = wordnet.synset(wnid).hypernym_paths()
    path = min(paths, key=lambda p: (len(p), [s.name() for s in p]))
    return str(path[min(depth, len(path) - 1)].name())


def umap_coordinates(matrix: np.ndarray, seed: int = 0) -> np.ndarray:
    """n x 2 UMAP embedding of a precomputed distance matrix."""
    import umap

    n = matrix.shape[0]
    if n < 4:
        raise InputError(f"an atlas needs at least 4 units, got {n}")
    reducer = umap.UMAP(n_components=2, metric="precomputed", n_neighbors=min(15, n - 1),
                        random_state=seed, init="random" if n < 16 else "spectral")
    with warnings.catch_warnings():  # precomputed: no inverse_transform; seeded: one thread
        warnings.simplefilter("ignore", UserWarning)
        return np.asarray(reducer.fit_transform(matrix), float)


def run_atlas(tx: Transaction, model_id: str, stimulus_set: str, layer: str, pool: str,
              measure: str, concept_set: str | None = None, depth: int = 6,
              seed: int = 0) -> pl.DataFrame:
    """Write (replace) the atlas of one stored functional measure."""
    setting, matrix = distance_matrix(tx, model_id, stimulus_set, layer, pool, measure)
    n = matrix.shape[0]
    wnids: list[str | None] = [None] * n
    if concept_set is not None:
        concepts = concept_set_frame(tx, concept_set)
        if concepts.height != n:
            raise InputError(f"concept set {concept_set!r} has {concepts.height} concepts but "
                             f"{layer} has {n} units")
        wnids = list(concepts["wnid"])
    xy = umap_coordinates(matrix, seed)
    result = pl.DataFrame({
        "model_id": model_id, "stimulus_set": stimulus_set, "layer": layer, "pool": pool,
        "measure": measure, "setting": setting, "unit": np.arange(n, dtype=np.int32),
        "x": xy[:, 0], "y": xy[:, 1],
        "wnid": pl.Series(wnids, dtype=pl.String),
        "hypernym": pl.Series([None if w is None else hypernym(w, depth) for w in wnids],
                              dtype=pl.String),
    })
    tx.write(result, UNIT_ATLAS)
    return result
