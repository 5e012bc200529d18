"""WWW concept scores against the formula written out in numpy; t-vMF identities; the
threshold rule; chunking; the job end to end with a tiny deterministic encoder."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ingest.texts import embed_texts
from unitsel import Transaction
from unitsel.adapters.encoders import unit_rows
from unitsel.analyses.concept_scores import concepts_of, run_concept_scores, scores, tvmf
from unitsel.errors import InputError

from .layers import load


def _unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    return unit_rows(rng.normal(size=(n, d)))


def test_scores_match_the_formula() -> None:
    rng = np.random.default_rng(0)
    images, texts, template = _unit(rng, 40), _unit(rng, 25), _unit(rng, 1)[0]
    for similarity, kappa in (("cos", 0.0), ("tvmf", 16.0)):
        def sim(a: np.ndarray, b: np.ndarray, similarity: str = similarity,
                kappa: float = kappa) -> float:
            c = float(a @ b)
            return c if similarity == "cos" else (1 + c) / (1 + kappa * (1 - c)) - 1

        expected = [np.mean([sim(v, t) - sim(v, template) for v in images]) for t in texts]
        got = scores(images, texts, template, similarity, kappa, chunk=7)
        assert np.allclose(got, expected)
        assert np.allclose(got, scores(images, texts, template, similarity, kappa))


def test_tvmf_identities() -> None:
    c = np.linspace(-1, 1, 201)
    assert np.allclose(tvmf(c, 0.0), c)  # kappa = 0 is the cosine
    for kappa in (0.5, 4.0, 64.0):
        values = tvmf(c, kappa)
        assert (np.diff(values) > 0).all()  # monotone in c
        assert values[-1] == pytest.approx(1.0) and values[0] == pytest.approx(-1.0)
        assert (values[1:-1] < c[1:-1]).all()  # sharper than the cosine inside (-1, 1)


def test_threshold_rule_includes_ties() -> None:
    s = np.array([1.0, 0.95, 0.95, 0.94, -0.2])
    assert concepts_of(s, 0.95).tolist() == [True, True, True, False, False]
    assert concepts_of(np.array([0.3, 0.3]), 0.95).tolist() == [True, True]


class HashText:
    """A tiny deterministic text encoder: words hashed to fixed random vectors, summed."""

    name = "hash-8"

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            vector = np.zeros(8)
            for word in text.split():
                seed = int(hashlib.sha256(word.encode()).hexdigest()[:8], 16)
                vector += np.random.default_rng(seed).normal(size=8)
            rows.append(vector)
        return unit_rows(np.asarray(rows))


def test_job_end_to_end(root: Path) -> None:
    rng = np.random.default_rng(1)
    acts = rng.random((30, 3)).astype(np.float32)
    load(root, acts, [str(i % 3) for i in range(30)])
    encoder = HashText()
    concepts = ["dog", "cat", "car", "red car", "striped cat"]
    embed_texts(root, encoder, "toy", concepts, progress=False)
    images = encoder.encode_texts([f"cat {i}" if i % 2 else f"dog {i}" for i in range(30)])
    with Transaction(root) as tx:
        tx.write(pl.DataFrame({"encoder": encoder.name, "stimulus_set": "s",
                               "stimulus": pl.Series(range(30), dtype=pl.Int32),
                               "crop": "center", "embedding": pl.Series(
                                   list(images), dtype=pl.List(pl.Float32))}),
                 "image_embeddings")
    result = run_concept_scores(root, "m", "s", "l", "none", encoder.name, "toy", n=5,
                                keep=10, progress=False)
    template = encoder.encode_texts(["a photo of a"])[0]
    texts = encoder.encode_texts(sorted(concepts))
    for unit in range(3):
        top = np.argsort(-acts[:, unit], kind="stable")[:5]
        expected = scores(images[top].astype(np.float64), texts.astype(np.float64), template)
        got = result.filter(unit=unit).sort("concept")["score"].to_numpy()
        assert np.allclose(got, expected, atol=1e-6)
        flags = result.filter(unit=unit).sort("concept")["is_concept"].to_numpy()
        assert (flags == (expected >= 0.95 * expected.max() - 1e-9)).all()
    rerun = run_concept_scores(root, "m", "s", "l", "none", encoder.name, "toy", n=5, keep=10,
                               progress=False)
    assert rerun.height == result.height == 3 * 5
    with pytest.raises(InputError, match="no hash-8 text embeddings"):
        run_concept_scores(root, "m", "s", "l", "none", encoder.name, "other", progress=False)


def test_bundled_minilm_loads_offline_and_embeds() -> None:
    from unitsel.adapters.encoders import MINILM, SentenceTransformerText

    encoder = SentenceTransformerText()
    vectors = encoder.encode_texts(["a photo of a dog", "puppy", "spreadsheet"])
    assert encoder.name == MINILM and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
