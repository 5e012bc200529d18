"""WWW concept scores (and the Grad-CAM + t-vMF variant) per unit.

For unit i with top-n activating images v (from `unit_top`, rank <= n, all stimuli; embedded
with `crop` 'center' or 'gradcam') and concept texts t_j of a concept set:

    S_j = (1/n) sum_v [ sim(v, t_j) - sim(v, t_template) ]

sim is the cosine c of the unit-norm embeddings, or t-vMF(c; kappa) = (1 + c) / (1 + kappa (1 -
c)) - 1 (Kobayashi 2021; kappa = 0 is the cosine). The unit's concepts are those with S_j >
alpha * max_j S_j (alpha = 0.95), "above the threshold" as the paper says; `inclusive` counts
scores equal to the threshold too (>=). Concepts are scored in
chunks (`chunk` texts at a time) for groups of `group` units, so 80k WordNet lemmas never
become a dense units x concepts matrix: the peak is group x concepts scores plus one chunk of
group x n x chunk similarities (float64).
Stored per unit: its concepts and the `keep` best-scoring others.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from unitsel.adapters.encoders import TextEncoder
from unitsel.errors import InputError
from unitsel.schema import CONCEPT_EVALUATION, CONCEPT_SCORES, IMAGE_EMBEDDINGS, TEXT_EMBEDDINGS
from unitsel.warehouse import Transaction

SIMILARITIES = ("cos", "tvmf")
TEMPLATE_SET = "templates"


def tvmf(cosine: np.ndarray, kappa: float) -> np.ndarray:
    """t-vMF similarity of cosines (kappa >= 0)."""
    return np.asarray((1.0 + cosine) / (1.0 + kappa * (1.0 - cosine)) - 1.0)


def _similar(cosine: np.ndarray, similarity: str, kappa: float) -> np.ndarray:
    return cosine if similarity == "cos" else tvmf(cosine, kappa)


def group_scores(images: np.ndarray, texts: np.ndarray, template: np.ndarray,
                 similarity: str = "cos", kappa: float = 0.0, chunk: int = 8192) -> np.ndarray:
    """S_j of a group of units: `images` units x n x d, `texts` m x d, `template` d (all
    unit-norm); returns units x m. Texts go through in float64 chunks."""
    if similarity not in SIMILARITIES:
        raise InputError(f"similarity {similarity!r} is not one of {list(SIMILARITIES)}")
    units, n, d = images.shape
    flat = images.reshape(units * n, d).astype(np.float64)
    base = _similar(flat @ template.astype(np.float64), similarity, kappa)
    out = np.empty((units, len(texts)))
    for start in range(0, len(texts), chunk):
        block = texts[start:start + chunk].astype(np.float64)
        sims = _similar(flat @ block.T, similarity, kappa).reshape(units, n, -1)
        out[:, start:start + chunk] = sims.mean(axis=1)
    return np.asarray(out - base.reshape(units, n).mean(axis=1, keepdims=True))


def scores(images: np.ndarray, texts: np.ndarray, template: np.ndarray, similarity: str = "cos",
           kappa: float = 0.0, chunk: int = 8192) -> np.ndarray:
    """S_j for every text of one unit: `images` n x d."""
    return np.asarray(group_scores(images[None], texts, template, similarity, kappa, chunk)[0])


def concepts_of(score: np.ndarray, alpha: float, inclusive: bool = False) -> np.ndarray:
    """The concept rule: S_j > alpha * max S (>= when `inclusive`)."""
    threshold = alpha * score.max()
    return np.asarray(score >= threshold if inclusive else score > threshold)


def _matrix(frame: pl.DataFrame) -> np.ndarray:
    return np.asarray(frame["embedding"].to_list(), dtype=np.float32)


def _score_group(texts: np.ndarray, template: np.ndarray, concepts: np.ndarray,
                 similarity: str, kappa: float, alpha: float, inclusive: bool, keep: int,
                 units: list[int], images: np.ndarray) -> pl.DataFrame:
    """One group's rows: each unit's concepts and its `keep` best-scoring others (a task:
    the concept texts are sent to each worker once, the group's image embeddings with it)."""
    block = group_scores(images, texts, template, similarity, kappa)
    frames = []
    for unit, s in zip(units, block, strict=True):
        chosen = concepts_of(s, alpha, inclusive)
        best = np.argsort(-s, kind="stable")[: int(chosen.sum()) + keep]
        frames.append(pl.DataFrame({"unit": unit, "concept": concepts[best],
                                    "score": s[best], "is_concept": chosen[best]}))
    return pl.concat(frames)


def run_concept_scores(tx: Transaction, model_id: str, stimulus_set: str, layer: str,
                       pool: str, encoder: str, concept_set: str, crop: str = "center",
                       similarity: str = "cos", kappa: float = 0.0, n: int = 40,
                       alpha: float = 0.95, template: str = "a photo of a", keep: int = 5,
                       inclusive: bool = False, group: int = 64) -> pl.DataFrame:
    """Score every unit of a layer against a concept set; write (replace) the partition."""
    embedded = tx.scan(TEXT_EMBEDDINGS).filter(encoder=encoder)
    texts = embedded.filter(concept_set=concept_set).sort("concept").collect()
    base = embedded.filter(concept_set=TEMPLATE_SET, concept=template).collect()
    if texts.is_empty() or base.is_empty():
        raise InputError(f"no {encoder} text embeddings of concept set {concept_set!r} and "
                         f"template {template!r}; embed them with `unitsel ingest texts`")
    images = tx.scan(IMAGE_EMBEDDINGS).filter(encoder=encoder, stimulus_set=stimulus_set,
                                              crop=crop).collect()
    with tx.sql() as con:
        top = con.execute(
            "SELECT unit, list(stimulus ORDER BY rank) AS stimuli FROM unit_top WHERE "
            "model_id = $1 AND stimulus_set = $2 AND layer = $3 AND pool = $4 AND "
            "subset = 'all' AND rank <= $5 GROUP BY unit ORDER BY unit",
            [model_id, stimulus_set, layer, pool, n]).pl()
    if top.is_empty():
        raise InputError(f"no top stimuli of {model_id} {layer} {pool} on {stimulus_set}")
    row_of = {s: i for i, s in enumerate(images["stimulus"])}
    missing = {s for ss in top["stimuli"] for s in ss if s not in row_of}
    if missing:
        raise InputError(f"{len(missing)} top stimuli have no {encoder} {crop} image "
                         f"embedding, e.g. stimulus {min(missing)}; embed the stimulus set")
    image_matrix = _matrix(images)
    units, stimuli = top["unit"].to_list(), top["stimuli"].to_list()
    tasks = [(units[start:start + group],
              image_matrix[np.asarray([[row_of[x] for x in ss]
                                       for ss in stimuli[start:start + group]])])
             for start in range(0, len(units), group)]
    with tx.runner() as run:
        frames = run.map(_score_group, tasks, desc="concept scores", unit="group",
                         progress=tx.progress,
                         shared=(_matrix(texts), _matrix(base)[0],
                                 np.asarray(texts["concept"]), similarity, kappa, alpha, inclusive,
                                 keep))
    result = pl.concat(frames).with_columns(
        model_id=pl.lit(model_id), stimulus_set=pl.lit(stimulus_set), layer=pl.lit(layer),
        pool=pl.lit(pool), encoder=pl.lit(encoder), crop=pl.lit(crop),
        similarity=pl.lit(similarity), concept_set=pl.lit(concept_set))
    tx.write(result.select(CONCEPT_SCORES.written_columns), CONCEPT_SCORES)
    return result


def evaluate(concepts: list[list[str]], labels: list[str], eval_encoder: TextEncoder
             ) -> dict[str, float]:
    """Mean cos, F1 and hit rate of each unit's concepts against its class label text."""
    texts = sorted({*labels, *(c for cs in concepts for c in cs)})
    vectors = dict(zip(texts, eval_encoder.encode_texts(texts).astype(np.float64), strict=True))
    cos, f1, hits = [], [], []
    for chosen, label in zip(concepts, labels, strict=True):
        cos.append(float(np.mean([vectors[c] @ vectors[label] for c in chosen])))
        hit = label in chosen
        precision = hit / len(chosen)
        f1.append(2 * precision * hit / (precision + hit) if hit else 0.0)
        hits.append(hit)
    return {"mean_cos": float(np.mean(cos)), "f1": float(np.mean(f1)),
            "hit_rate": float(np.mean(hits))}


def run_evaluation(tx: Transaction, model_id: str, stimulus_set: str, layer: str, pool: str,
                   encoder: str, crop: str, similarity: str, concept_set: str,
                   label_set: str, eval_encoder: TextEncoder) -> pl.DataFrame:
    """Evaluate stored concept scores of output units (unit i = class index i of `label_set`,
    whose lemmas with spaces are the label texts); write (replace) the row."""
    from unitsel.analyses.semantics import concept_set_frame

    labels = [n.replace("_", " ") for n in concept_set_frame(tx, label_set)["name"]]
    chosen = (tx.scan(CONCEPT_SCORES)
              .filter(model_id=model_id, stimulus_set=stimulus_set, layer=layer, pool=pool,
                      encoder=encoder, crop=crop, similarity=similarity,
                      concept_set=concept_set, is_concept=True)
              .group_by("unit").agg(pl.col("concept")).sort("unit").collect())
    if chosen.height != len(labels):
        raise InputError(f"{chosen.height} units have concepts but {label_set!r} has "
                         f"{len(labels)} classes; evaluate an output layer's concept scores")
    row = evaluate(chosen["concept"].to_list(), [labels[u] for u in chosen["unit"]],
                   eval_encoder)
    result = pl.DataFrame([{
        "model_id": model_id, "stimulus_set": stimulus_set, "layer": layer, "pool": pool,
        "encoder": encoder, "crop": crop, "similarity": similarity, "concept_set": concept_set,
        "eval_encoder": eval_encoder.name, "n_units": chosen.height, **row}])
    tx.write(result, CONCEPT_EVALUATION)
    return result
