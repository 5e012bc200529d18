"""WWW concept scores against the formula written out in numpy; t-vMF identities; the
threshold rule; chunking; the job end to end with a tiny deterministic encoder."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import unitsel
from ingest.texts import embed_texts
from unitsel import Transaction
from unitsel.adapters.encoders import unit_rows
from unitsel.analyses.concept_scores import concepts_of, run_concept_scores, scores, tvmf
from unitsel.errors import InputError

from .conftest import duckdb_csv
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


def test_threshold_rule_is_strict_unless_inclusive() -> None:
    """WWW: concepts are the scores "above the threshold"; `inclusive` adds ties at it."""
    s = np.array([1.0, 0.95, 0.95, 0.94, -0.2])
    assert concepts_of(s, 0.95).tolist() == [True, False, False, False, False]
    assert concepts_of(s, 0.95, inclusive=True).tolist() == [True, True, True, False, False]
    assert concepts_of(np.array([0.3, 0.3]), 0.95).tolist() == [True, True]
    assert concepts_of(np.array([0.0, -0.1]), 0.95).tolist() == [False, False]


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
    with Transaction(root, progress=False) as tx:
        embed_texts(tx, encoder, "toy", concepts)
    images = encoder.encode_texts([f"cat {i}" if i % 2 else f"dog {i}" for i in range(30)])
    with Transaction(root) as tx:
        tx.write(pl.DataFrame({"encoder": encoder.name, "stimulus_set": "s",
                               "stimulus": pl.Series(range(30), dtype=pl.Int32),
                               "crop": "center", "embedding": pl.Series(
                                   list(images), dtype=pl.List(pl.Float32))}),
                 "image_embeddings")
    with Transaction(root, progress=False) as tx:
        result = run_concept_scores(tx, "m", "s", "l", "none", encoder.name, "toy", n=5, keep=10)
    template = encoder.encode_texts(["a photo of a"])[0]
    texts = encoder.encode_texts(sorted(concepts))
    for unit in range(3):
        top = np.argsort(-acts[:, unit], kind="stable")[:5]
        expected = scores(images[top].astype(np.float64), texts.astype(np.float64), template)
        got = result.filter(unit=unit).sort("concept")["score"].to_numpy()
        assert np.allclose(got, expected, atol=1e-6)
        flags = result.filter(unit=unit).sort("concept")["is_concept"].to_numpy()
        assert (flags == (expected > 0.95 * expected.max())).all()
    with Transaction(root, progress=False) as tx:
        rerun = run_concept_scores(tx, "m", "s", "l", "none", encoder.name, "toy", n=5, keep=10)
    assert rerun.height == result.height == 3 * 5
    with pytest.raises(InputError, match="no hash-8 text embeddings"), Transaction(root) as tx:
        run_concept_scores(tx, "m", "s", "l", "none", encoder.name, "other")


def test_bundled_minilm_loads_offline_and_embeds() -> None:
    from unitsel.adapters.encoders import MINILM, SentenceTransformerText

    encoder = SentenceTransformerText()
    vectors = encoder.encode_texts(["a photo of a dog", "puppy", "spreadsheet"])
    assert encoder.name == MINILM and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_evaluation_hand_worked() -> None:
    from unitsel.analyses.concept_scores import evaluate

    encoder = HashText()
    row = evaluate([["seven", "dog"], ["one"]], ["seven", "two"], encoder)
    vectors = dict(zip(["seven", "dog", "one", "two"],
                       encoder.encode_texts(["seven", "dog", "one", "two"]).astype(float),
                       strict=True))
    expected_cos = np.mean([np.mean([1.0, vectors["dog"] @ vectors["seven"]]),
                            vectors["one"] @ vectors["two"]])
    assert row["hit_rate"] == 0.5
    assert row["f1"] == pytest.approx((2 / 3 + 0) / 2)  # P = 1/2, R = 1; then a miss
    assert row["mean_cos"] == pytest.approx(expected_cos)


def test_demo_concepts_answer_from_the_duckdb_cli(demo_root: Path) -> None:
    rows = duckdb_csv(demo_root, "SELECT model_id, split_part(crop, ':', 1), similarity, "
                                 "hit_rate FROM concept_evaluation ORDER BY ALL")
    assert len(rows) == 2 * 2 * 2  # models x crops x similarities
    hit = {(m, c, s): float(h) for m, c, s, h in rows}
    # The trained CNN's logits are named by their own digit far more often.
    assert hit[("demo-cnn-trained", "center", "cos")] > hit[("demo-cnn-untrained", "center",
                                                              "cos")]
    with unitsel.connection(demo_root) as con:
        joined = con.sql("SELECT count(*), count(top_label) FROM unit_concepts").fetchone()
    assert joined is not None and joined[0] > 0 and joined[0] == joined[1]



def test_open_clip_adapter_loads_a_local_checkpoint(tmp_path: Path) -> None:
    import open_clip
    import torch

    from unitsel.adapters.encoders import OpenClip

    torch.manual_seed(0)
    reference, _, _ = open_clip.create_model_and_transforms("RN50", pretrained=None)
    checkpoint = tmp_path / "rn50-random.pt"
    torch.save(reference.state_dict(), checkpoint)
    encoder = OpenClip("RN50", checkpoint)
    assert encoder.name == "open_clip:RN50:rn50-random"
    texts = encoder.encode_texts(["a photo of a dog", "a red car"])
    images = encoder.encode_images(torch.rand(2, 1, 32, 32))  # grey, small: resized
    assert texts.shape == (2, 1024) and images.shape == (2, 1024)
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        direct = reference.eval().encode_text(open_clip.get_tokenizer("RN50")(
            ["a photo of a dog", "a red car"]))
    assert np.allclose(texts, torch.nn.functional.normalize(direct, dim=1).numpy(), atol=1e-5)
    with pytest.raises(InputError, match="not an open_clip checkpoint"):
        OpenClip("RN50", tmp_path / "missing.pt")


def test_images_command_embeds_centre_and_gradcam_crops(root: Path, tmp_path: Path) -> None:
    import open_clip
    import torch
    from click.testing import CliRunner
    from PIL import Image

    from unitsel.cli import cli
    from unitsel.warehouse import scan

    torch.manual_seed(0)
    reference, _, _ = open_clip.create_model_and_transforms("RN50", pretrained=None)
    torch.save(reference.state_dict(), tmp_path / "clip.pt")
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(
            folder / f"{i}.png")
    (tmp_path / "labels.csv").write_text("stimulus,uri,label\n0,0.png,a\n1,1.png,b\n2,2.png,a\n")
    common = ["ingest", "images", "--stimulus-set", "s", "--images", str(folder), "--labels",
              str(tmp_path / "labels.csv"), "--image-size", "32", "--resize", "32",
              "--clip-arch", "RN50", "--clip-checkpoint", str(tmp_path / "clip.pt"),
              "--crop-size", "16", "--root", str(root)]
    for extra in ([], ["--model-id", "r18", "--arch", "resnet18", "--layer", "layer3"]):
        result = CliRunner().invoke(cli, common + extra)
        assert result.exit_code == 0, result.output
    stored = scan("image_embeddings", root).collect()
    assert sorted(set(stored["crop"])) == ["center", "gradcam:r18"]
    assert stored.height == 6 and all(len(e) == 1024 for e in stored["embedding"])


def test_concept_texts_from_files_wordnet_and_sets(root: Path, tmp_path: Path) -> None:
    from ingest.texts import concept_texts

    (tmp_path / "label.csv").write_text("number,name,category\n1,dog,object\n2,red-c,color\n"
                                        "3,dog,object\n")
    with Transaction(root, progress=False) as tx:
        assert concept_texts(tx, "broden", tmp_path / "label.csv") == ["dog", "red-c"]
        (tmp_path / "words.txt").write_text("cat\n\n fish \n")
        assert concept_texts(tx, "mine", tmp_path / "words.txt") == ["cat", "fish"]
        nouns = concept_texts(tx, "wordnet-nouns")
        assert len(nouns) > 100_000 and "golden retriever" in nouns
        (tmp_path / "empty.txt").write_text("\n")
        with pytest.raises(InputError, match="no concept texts"):
            concept_texts(tx, "x", tmp_path / "empty.txt")
