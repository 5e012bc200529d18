"""INVERT: compositional labels of units with significance (Bykov et al., "Labeling Neural
Representations with Inverse Recognition", NeurIPS 2023; their code: lapalap/invert,
`Invert.explain_representation`).

A unit is labelled with the boolean formulas over concepts (AND, OR, NOT) whose stimuli its
activations separate best from the rest, by the AUROC P(a_in > a_out) + 1/2 P(a_in = a_out),
found by beam search. The search follows INVERT's code step by step, so it returns the same
beams (tests/test_invert.py runs a re-implementation of it beside this one):

- atoms: every concept and its negation;
- length 1: the atoms sorted by AUROC (descending in `positive` mode, ascending in
  `negative`), the first B whose concept fraction (share of stimuli marked) lies in
  [min_fraction, max_fraction] and strictly between 0 and 1;
- each further length up to L: every beam formula AND and OR every atom (the atoms sorted by
  differentiability 2|AUROC - 1/2|, the first `limit_search` of them), kept when its fraction
  is in bounds; the beam and the new formulas are sorted together, stably (ties keep the order
  they were made in: beam first, then formula by formula, atom by atom, AND before OR), and
  the best B stay. As in INVERT, a formula made twice (x & y, y & x) fills two places; the
  result lists each distinct formula once.

Concepts are masks over cells: labels (label-set concepts) or stimuli. A formula over label
sets is a label set, so its rank sum is the sum of its labels' rank sums from `class_stats`
and a whole group of units is scored by one matrix product per length, never reading an
activation; per-stimulus concepts rank each unit's activations once. Rank sums are sums of
half-integers, exact in float64, so equal AUROCs are equal floats and ties break as INVERT's
order says, not by rounding. INVERT's AUROC (torchmetrics' binary_auroc) is the same number
up to float32 rounding.

p: the two-sided Mann-Whitney test of the formula's stimuli against the rest, normal
approximation with tie and continuity corrections (scipy.stats.mannwhitneyu, method
'asymptotic'; INVERT's `get_p_value` calls mannwhitneyu too); q: Benjamini-Hochberg across
every row written for the layer. The formulas were chosen for their AUROC on the same data,
so p and q are optimistic: read them as a filter, not as a test of a hypothesis made before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import polars as pl
import scipy.stats

from unitsel.analyses.activations import activation_matrix
from unitsel.errors import InputError
from unitsel.schema import CLASS_STATS, CONCEPT_MASKS, PREDICTIONS, UNIT_LABELS, UNIT_SUMMARIES
from unitsel.warehouse import Transaction

MODES = ("positive", "negative")
# Floats held at once per group of units (group x beam x atoms candidate scores, group x
# beam x cells masked ranks; a few arrays of each): bounds a task's memory whatever the
# number of concepts or stimuli.
_CANDIDATES_PER_GROUP = 2_000_000
_PLAIN_NAME = re.compile(r'[^\s&|~()"]+')


@dataclass(frozen=True)
class Search:
    """INVERT's search settings, with its defaults: formulas up to `max_length` concepts,
    `beam_size` kept per length, concept fractions in [min_fraction, max_fraction], the best
    (`positive`) or worst (`negative`) AUROC, and only the `limit_search` most
    differentiating atoms combined (all when None)."""

    max_length: int = 3
    beam_size: int = 10
    min_fraction: float = 0.0
    max_fraction: float = 0.5
    mode: str = "positive"
    limit_search: int | None = None

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise InputError("formulas need at least 1 concept", column="--max-length")
        if self.beam_size < 1:
            raise InputError("the beam keeps at least 1 formula", column="--beam-size")
        if not 0 <= self.min_fraction <= self.max_fraction <= 1:
            raise InputError("fractions need 0 <= min <= max <= 1", column="--max-fraction")
        if self.mode not in MODES:
            raise InputError(f"mode is one of {list(MODES)}", column="--mode")
        if self.limit_search is not None and self.limit_search < 1:
            raise InputError("combine at least 1 atom", column="--limit-search")


@dataclass(frozen=True, order=True)
class Formula:
    """A formula in canonical form: a literal (`op` '', a concept index, maybe negated), or
    the AND ('&') / OR ('|') of children flattened, without repeats (x & x = x), absorbed
    (x & (x | y) = x) and sorted, so formulas that differ only so are equal."""

    op: str
    concept: int = -1
    negated: bool = False
    children: tuple[Formula, ...] = ()

    @staticmethod
    def literal(concept: int, negated: bool = False) -> Formula:
        return Formula("", concept, negated)

    def operands(self, op: str) -> tuple[Formula, ...]:
        return self.children if self.op == op else (self,)

    def combine(self, op: str, other: Formula) -> Formula:
        """self AND other ('&') or self OR other ('|')."""
        parts = sorted({*self.operands(op), *other.operands(op)})
        dual = "|" if op == "&" else "&"
        kept = [p for p in parts if p.op != dual or not any(
            q != p and set(q.operands(dual)) <= set(p.children) for q in parts)]
        return kept[0] if len(kept) == 1 else Formula(op, children=tuple(kept))

    @property
    def length(self) -> int:
        """Literals it combines, repeats counted."""
        return 1 if not self.op else sum(c.length for c in self.children)

    def concepts(self) -> set[int]:
        return {self.concept} if not self.op else set().union(
            *(c.concepts() for c in self.children))

    def text(self, names: Sequence[str]) -> str:
        """`a & (b | ~c)`: names that hold spaces, operators or quotes in double quotes."""
        if not self.op:
            name = names[self.concept]
            return ("~" if self.negated else "") + (
                name if _PLAIN_NAME.fullmatch(name) else json.dumps(name, ensure_ascii=False))
        return f" {self.op} ".join(c.text(names) if not c.op else f"({c.text(names)})"
                                   for c in self.children)


class Entry(NamedTuple):
    """A formula of a unit's beam: its rank sum and the stimuli it marks."""

    formula: Formula
    rank_sum: float
    n_in: float


def auroc(rank_sum: np.ndarray, n_in: np.ndarray, n: float) -> np.ndarray:
    """U / (n_in n_out), U = rank_sum - n_in (n_in + 1) / 2 (NaN where a side is empty)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((rank_sum - n_in * (n_in + 1) / 2) / (n_in * (n - n_in)))


def mann_whitney_p(rank_sum: np.ndarray, n_in: np.ndarray, n: float,
                   tie_term: np.ndarray) -> np.ndarray:
    """Two-sided Mann-Whitney p, normal approximation with tie and continuity corrections,
    as scipy.stats.mannwhitneyu(in, out, method='asymptotic'): 1 where every activation ties
    (as SciPy: U is its mean, the continuity correction sends z to -inf); NaN where a side
    is empty."""
    n_out = n - n_in
    u = rank_sum - n_in * (n_in + 1) / 2
    var = n_in * n_out / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.abs(u - n_in * n_out / 2) - 0.5) / np.sqrt(np.maximum(var, 0.0))
        p = np.minimum(1.0, 2 * scipy.stats.norm.sf(np.where(var > 0, z, -np.inf)))
    return np.asarray(np.where((n_in > 0) & (n_out > 0), p, np.nan))


@dataclass
class _Beams:
    """A group of units' beams, B places each, filled from the front: which places hold a
    formula, its rank sum, stimuli count, mask over the cells and the formula."""

    valid: np.ndarray  # units x B
    rank_sum: np.ndarray  # units x B
    n_in: np.ndarray  # units x B
    masks: np.ndarray  # units x B x cells
    formulas: list[list[Formula]]


def explain(weights: np.ndarray, counts: np.ndarray, masks: np.ndarray,
            search: Search) -> list[list[Entry]]:
    """INVERT's beam search for a group of units: `weights` units x cells (each cell's sum of
    the unit's mid-ranks), `counts` stimuli per cell, `masks` concepts x cells (each concept
    marking some but not all stimuli). Returns each unit's final beam, best first, with
    INVERT's repeats."""
    n = float(counts.sum())
    atoms = np.concatenate([masks, ~masks])  # the concepts, then their negations
    literals = [Formula.literal(k % len(masks), k >= len(masks)) for k in range(len(atoms))]
    atom_s, atom_n = weights @ atoms.T.astype(np.float64), atoms.astype(np.float64) @ counts
    if ((atom_n <= 0) | (atom_n >= n)).any():
        raise ValueError("every concept must mark some but not all stimuli")
    sign = 1.0 if search.mode == "negative" else -1.0  # argsort ascending: best first
    metric_order = np.argsort(sign * auroc(atom_s, atom_n, n), axis=1, kind="stable")
    # Differentiability 2|AUROC - 1/2| = |2U - n_in n_out| / (n_in n_out): exact, and equal
    # for an atom and its negation.
    u2 = np.abs(2 * atom_s - atom_n * (atom_n + 1) - atom_n * (n - atom_n))
    spread = np.take_along_axis(u2 / (atom_n * (n - atom_n)), metric_order, axis=1)
    combined = np.take_along_axis(metric_order, np.argsort(-spread, axis=1, kind="stable"),
                                  axis=1)[:, :search.limit_search]

    def fits(n_in: np.ndarray) -> np.ndarray:
        fraction = n_in / n
        return np.asarray((fraction >= search.min_fraction) & (fraction <= search.max_fraction)
                          & (n_in > 0) & (n_in < n))

    first = fits(atom_n)[metric_order]
    first &= np.cumsum(first, axis=1) <= search.beam_size
    beams = _place(len(weights), search.beam_size, atoms.shape[1],
                   [[(atoms[k], literals[k], atom_s[g, k], atom_n[k]) for k in order[keep]]
                    for g, (order, keep) in enumerate(zip(metric_order, first, strict=True))])
    for _ in range(2, search.max_length + 1):
        s, n_in, valid = _candidates(beams, weights, counts, atoms, atom_s, atom_n, combined)
        valid &= fits(n_in)
        keys = np.where(valid, sign * auroc(s, n_in, n), np.inf)
        best = np.argsort(keys, axis=1, kind="stable")[:, :search.beam_size]
        beams = _place(len(weights), search.beam_size, atoms.shape[1], [
            [(*_made(beams, g, int(i), atoms, literals, combined), s[g, i], n_in[g, i])
             for i in row if valid[g, i]] for g, row in enumerate(best)])
    return [[Entry(f, float(beams.rank_sum[g, i]), float(beams.n_in[g, i]))
             for i, f in enumerate(formulas)] for g, formulas in enumerate(beams.formulas)]


def _candidates(beams: _Beams, weights: np.ndarray, counts: np.ndarray, atoms: np.ndarray,
                atom_s: np.ndarray, atom_n: np.ndarray, combined: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank sums, stimulus counts and validity of every unit's beam followed by each beam
    formula AND, then OR, each atom in `combined` order (INVERT's list, before sorting)."""
    units, beam, cells = beams.masks.shape
    as_float = atoms.T.astype(np.float64)
    index = combined[:, None, :]
    # AND of every beam formula with every atom: one matrix product for the group.
    and_s = np.take_along_axis(((weights[:, None, :] * beams.masks).reshape(-1, cells)
                                @ as_float).reshape(units, beam, -1), index, 2)
    and_n = np.take_along_axis(((beams.masks * counts).reshape(-1, cells)
                                @ as_float).reshape(units, beam, -1), index, 2)
    # OR by inclusion-exclusion: |b or a| = |b| + |a| - |b and a|, rank sums alike.
    or_s = beams.rank_sum[:, :, None] + np.take_along_axis(atom_s, combined, 1)[:, None] - and_s
    or_n = beams.n_in[:, :, None] + atom_n[combined][:, None] - and_n
    new_s = np.stack([and_s, or_s], axis=3).reshape(units, -1)  # (beam, atom, op) order
    new_n = np.stack([and_n, or_n], axis=3).reshape(units, -1)
    made = np.repeat(beams.valid, new_s.shape[1] // beam, axis=1)
    return (np.concatenate([beams.rank_sum, new_s], axis=1),
            np.concatenate([beams.n_in, new_n], axis=1),
            np.concatenate([beams.valid, made], axis=1))


def _made(beams: _Beams, g: int, i: int, atoms: np.ndarray, literals: list[Formula],
          combined: np.ndarray) -> tuple[np.ndarray, Formula]:
    """Mask and formula of candidate `i` of unit `g` (as `_candidates` numbers them)."""
    beam = beams.valid.shape[1]
    if i < beam:
        return beams.masks[g, i], beams.formulas[g][i]
    b, rest = divmod(i - beam, 2 * combined.shape[1])
    j, op = divmod(rest, 2)
    k = combined[g, j]
    if op:
        return beams.masks[g, b] | atoms[k], beams.formulas[g][b].combine("|", literals[k])
    return beams.masks[g, b] & atoms[k], beams.formulas[g][b].combine("&", literals[k])


def _place(units: int, beam: int, cells: int,
           chosen: list[list[tuple[np.ndarray, Formula, float, float]]]) -> _Beams:
    """Beams holding each unit's `chosen` (mask, formula, rank sum, n_in), best first."""
    beams = _Beams(np.zeros((units, beam), dtype=bool), np.zeros((units, beam)),
                   np.zeros((units, beam)), np.zeros((units, beam, cells), dtype=bool),
                   [[f for _, f, _, _ in row] for row in chosen])
    for g, row in enumerate(chosen):
        for i, (mask, _, s, n_in) in enumerate(row):
            beams.valid[g, i], beams.masks[g, i] = True, mask
            beams.rank_sum[g, i], beams.n_in[g, i] = s, n_in
    return beams


def label_rows(units: Sequence[int], beams: list[list[Entry]], names: Sequence[str], n: float,
               tie_terms: np.ndarray) -> pl.DataFrame:
    """`unit_labels` rows of a group (without q and the job's columns): each unit's distinct
    formulas in beam order."""
    rows = []
    for unit, entries, tie in zip(units, beams, tie_terms, strict=True):
        seen: set[Formula] = set()
        for entry in entries:
            if entry.formula in seen:
                continue
            seen.add(entry.formula)
            rows.append((unit, len(seen), entry.formula.text(names),
                         sorted(names[c] for c in entry.formula.concepts()),
                         entry.formula.length, entry.rank_sum, entry.n_in, tie))
    frame = pl.DataFrame(rows, orient="row", schema={
        "unit": pl.Int32, "rank": pl.Int32, "formula": pl.String,
        "concepts": pl.List(pl.String), "length": pl.Int32, "rank_sum": pl.Float64,
        "n_in": pl.Float64, "tie_term": pl.Float64})
    s, n_in, ties = (frame[c].to_numpy() for c in ("rank_sum", "n_in", "tie_term"))
    return frame.with_columns(
        auroc=pl.Series(auroc(s, n_in, n)), p=pl.Series(mann_whitney_p(s, n_in, n, ties)),
        concept_fraction=pl.Series(n_in / n), n_in=pl.col("n_in").cast(pl.Int32),
    ).drop("rank_sum", "tie_term")


def _label_group(masks: np.ndarray, counts: np.ndarray, names: list[str], search: Search,
                 per_stimulus: bool, units: list[int], data: np.ndarray,
                 tie_terms: np.ndarray) -> pl.DataFrame:
    """One task: a group of units' labels. `data` is the group's label rank sums, or its
    activations (units x stimuli) to rank here, one sort per unit."""
    weights = scipy.stats.rankdata(data, axis=1) if per_stimulus else data
    return label_rows(units, explain(weights, counts, masks, search), names,
                      float(counts.sum()), tie_terms)


def _unit_summaries(tx: Transaction, partition: dict[str, str], subset: str) -> pl.DataFrame:
    found = (tx.scan(UNIT_SUMMARIES).filter(**partition, subset=subset)
             .select("unit", "n", "tie_term").sort("unit").collect())
    if found.is_empty():
        raise InputError(f"no summaries of {partition['model_id']} {partition['layer']} "
                         f"{partition['pool']} on {partition['stimulus_set']} (stimuli: "
                         f"{subset}; 'correct' needs recorded predictions)")
    return found


def _label_cells(tx: Transaction, partition: dict[str, str], subset: str, units: list[int]
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Label cells: the labels of the subset, their stimulus counts and units x labels rank
    sums from class_stats."""
    stats = (tx.scan(CLASS_STATS).filter(**partition, subset=subset)
             .select("unit", "label", "n", "rank_sum").collect())
    labels = sorted(stats["label"].unique().to_list())
    column = {label: i for i, label in enumerate(labels)}
    row = {unit: i for i, unit in enumerate(units)}
    sums = np.zeros((len(units), len(labels)))
    at = [column[x] for x in stats["label"]]
    sums[[row[u] for u in stats["unit"]], at] = stats["rank_sum"].to_numpy()
    counts = np.zeros(len(labels))
    counts[at] = stats["n"].to_numpy()
    return labels, counts, sums


def _stimulus_cells(tx: Transaction, partition: dict[str, str], correct_only: bool,
                    units: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stimulus cells: the subset's stimulus ids, their labels and units x stimuli activations."""
    acts, labels = activation_matrix(tx, partition["model_id"], partition["stimulus_set"],
                                     partition["layer"], partition["pool"], units)
    stimuli = np.arange(len(labels))
    if correct_only:
        correct = (tx.scan(PREDICTIONS).filter(model_id=partition["model_id"],
                                               stimulus_set=partition["stimulus_set"],
                                               is_correct=True)
                   .select("stimulus").collect()["stimulus"].to_numpy())
        stimuli = np.intersect1d(stimuli, correct)
    return stimuli, labels[stimuli], np.ascontiguousarray(acts[stimuli].T)


def _mask_matrix(rows: pl.DataFrame, cell_labels: np.ndarray, cell_stimuli: np.ndarray | None
                 ) -> tuple[list[str], np.ndarray]:
    """Concepts (sorted) x cells: a cell is marked when its label is one the concept covers
    or its stimulus one the concept marks."""
    names = sorted(rows["concept"].unique().to_list())
    masks = np.zeros((len(names), len(cell_labels)), dtype=bool)
    for i, (_, group) in enumerate(rows.sort("concept").group_by("concept",
                                                                  maintain_order=True)):
        covered = group["label"].drop_nulls().to_numpy()
        masks[i] = np.isin(cell_labels, covered)
        if cell_stimuli is not None:
            masks[i] |= np.isin(cell_stimuli, group["stimulus"].drop_nulls().to_numpy())
    return names, masks


def run_invert(tx: Transaction, model_id: str, stimulus_set: str, layer: str, pool: str,
               concept_set: str, search: Search = Search(), *, correct_only: bool = False,
               group: int | None = None) -> pl.DataFrame:
    """Label every unit of a layer with INVERT over a concept set (`concept_masks`); write
    (replace) the partition of `unit_labels`. Units go to the job's runner in groups."""
    rows = tx.scan(CONCEPT_MASKS).filter(stimulus_set=stimulus_set,
                                         concept_set=concept_set).collect()
    if rows.is_empty():
        raise InputError(f"no concept set {concept_set!r} of stimulus set {stimulus_set!r}; "
                         "write it with `unitsel ingest concept-masks`", column="--concept-set")
    partition = {"model_id": model_id, "stimulus_set": stimulus_set, "layer": layer,
                 "pool": pool}
    subset = "correct" if correct_only else "all"
    summaries = _unit_summaries(tx, partition, subset)
    units = summaries["unit"].to_list()
    per_stimulus = bool(rows["stimulus"].is_not_null().any())
    if per_stimulus:
        stimuli, cell_labels, data = _stimulus_cells(tx, partition, correct_only, units)
        counts = np.ones(len(stimuli))
        names, masks = _mask_matrix(rows, cell_labels, stimuli)
    else:
        labels, counts, data = _label_cells(tx, partition, subset, units)
        names, masks = _mask_matrix(rows, np.asarray(labels), None)
    n = counts.sum()
    marked = masks.astype(np.float64) @ counts
    informative = (marked > 0) & (marked < n)  # a concept of all or no stimuli says nothing
    if not informative.any():
        raise InputError(f"no concept of {concept_set!r} marks some but not all of the "
                         f"{int(n)} stimuli", column="--concept-set")
    names = [name for name, keep in zip(names, informative, strict=True) if keep]
    masks = masks[informative]
    widest = max(2 * len(names), masks.shape[1])  # atoms, or cells when there are more
    group = group or max(1, min(64, _CANDIDATES_PER_GROUP // (search.beam_size * widest)))
    ties = summaries["tie_term"].to_numpy()
    tasks = [(units[s:s + group], data[s:s + group], ties[s:s + group])
             for s in range(0, len(units), group)]
    with tx.runner(rows=len(units) * int(n)) as run:
        frames = run.map(_label_group, tasks, desc="INVERT", unit="group",
                         progress=tx.progress,
                         shared=(masks, counts, names, search, per_stimulus))
    result = pl.concat(frames)
    result = result.with_columns(
        q=pl.Series(scipy.stats.false_discovery_control(result["p"].to_numpy())),
        model_id=pl.lit(model_id), stimulus_set=pl.lit(stimulus_set), layer=pl.lit(layer),
        pool=pl.lit(pool), concept_set=pl.lit(concept_set), subset=pl.lit(subset),
        mode=pl.lit(search.mode), beam_size=pl.lit(search.beam_size),
        max_length=pl.lit(search.max_length), min_fraction=pl.lit(search.min_fraction),
        max_fraction=pl.lit(search.max_fraction))
    tx.write(result.select(UNIT_LABELS.written_columns), UNIT_LABELS)
    return result
