"""Benchmark: WWW concept scores at the issue's scale, 1000 units x 80,000 concept texts
(384-d, like all-MiniLM-L6-v2; 40 top images per unit from 20,000 probe images), seeded random
unit-norm embeddings. Runs `group_scores` exactly as the job does (64 units at a time, 8192
texts per chunk), checks a sample of units against the single-unit `scores`, and reports time
and peak memory (max RSS) against the dense units x concepts float64 matrix it avoids.

    python bench/concepts.py
"""

from __future__ import annotations

import resource
import time

import numpy as np

from unitsel.adapters.encoders import unit_rows
from unitsel.analyses.concept_scores import concepts_of, group_scores, scores

UNITS, CONCEPTS, IMAGES, TOP, DIM, GROUP = 1000, 80_000, 20_000, 40, 384, 64


def main() -> None:
    rng = np.random.default_rng(0)
    images = unit_rows(rng.normal(size=(IMAGES, DIM)))
    texts = unit_rows(rng.normal(size=(CONCEPTS, DIM)))
    template = unit_rows(rng.normal(size=(1, DIM)))[0]
    top = rng.integers(0, IMAGES, size=(UNITS, TOP))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    n_concepts = 0
    for start in range(0, UNITS, GROUP):
        block = group_scores(images[top[start:start + GROUP]], texts, template, "tvmf", 8.0)
        n_concepts += sum(int(concepts_of(s, 0.95).sum()) for s in block)
        if start == 0:
            assert np.allclose(block[3], scores(images[top[3]], texts, template, "tvmf", 8.0))
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dense = UNITS * CONCEPTS * 8 / 2**20
    print(f"{UNITS} units x {CONCEPTS} concepts (t-vMF): {elapsed:.1f} s, {n_concepts} concepts; "
          f"peak RSS {peak:.0f} MiB (inputs {before:.0f} MiB); a dense float64 score matrix "
          f"would be {dense:.0f} MiB")


if __name__ == "__main__":
    main()
