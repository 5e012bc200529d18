"""The one-pass summary kernel: every summary row of a block of units from one read of it.

A block is some units of an activations partition with all their stimuli (one data file).
Every summary is per unit, so a block is summarised on its own, with memory bounded by the
block: a dense units x stimuli matrix and one sorted copy of it as 64-bit keys.

Each activation becomes the key (sortable float bits << 32 | stimulus); sorting a unit's keys
ascending gives its activations in order with equal values adjacent (mid-ranks, tie terms), and
the top-k (activation descending, ties by stimulus ascending) comes from the same sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MISSING = np.uint64(0xFFFFFFFF) << np.uint64(32)  # sorts after every finite activation


@dataclass(frozen=True)
class Labels:
    """A partition's stimuli: label index per stimulus id (-1: not in the stimulus set), the
    label names by index, and per stimulus whether the model classified it correctly (None:
    no predictions)."""

    index: np.ndarray
    names: list[str]
    correct: np.ndarray | None


def _sortable(values: np.ndarray) -> np.ndarray:
    """float32 -> uint32 whose unsigned order is the float order (-0.0 counted as 0.0)."""
    bits = (values + np.float32(0.0)).view(np.uint32)
    return np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000))


def _unsortable(keys: np.ndarray) -> np.ndarray:
    bits = np.where(keys >> 31, keys & np.uint32(0x7FFFFFFF), ~keys)
    return bits.astype(np.uint32).view(np.float32)


def summarise_block(unit: np.ndarray, stimulus: np.ndarray, activation: np.ndarray,
                    labels: Labels, k: int) -> dict[str, dict[str, np.ndarray]]:
    """Columns of `class_stats`, `unit_top` and `unit_summaries` (without the partition keys)
    for the units in `unit`, both subsets (`correct` only when some stimulus is correct).

    Rows are (unit, stimulus, activation) triples, each pair at most once; stimuli missing for
    a unit or outside the stimulus set are left out of its statistics, as a join would."""
    first = int(unit.min())
    n_units = int(unit.max()) - first + 1
    n_stimuli = len(labels.index)
    known = (stimulus < n_stimuli) & (labels.index[np.minimum(stimulus, n_stimuli - 1)] >= 0)
    row, col = unit[known] - first, stimulus[known]
    keys = np.full((n_units, n_stimuli), _MISSING, dtype=np.uint64)
    keys[row, col] = (_sortable(activation[known]).astype(np.uint64) << np.uint64(32)) \
        | col.astype(np.uint64)
    subsets = {"all": np.ones(n_stimuli, bool)}
    if labels.correct is not None and labels.correct.any():
        subsets["correct"] = labels.correct
    out: dict[str, list[dict[str, np.ndarray]]] = {
        "class_stats": [], "unit_top": [], "unit_summaries": []}
    for subset, chosen in subsets.items():
        block = keys[:, chosen & (labels.index >= 0)]
        if block.shape[1] == 0:
            continue
        block.sort(axis=1)
        for name, columns in _summaries(block, labels, k, first).items():
            columns["subset"] = np.full(len(next(iter(columns.values()))), subset, object)
            out[name].append(columns)
    return {name: {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
            for name, parts in out.items() if parts}


def _summaries(ordered: np.ndarray, labels: Labels, k: int,
               first: int) -> dict[str, dict[str, np.ndarray]]:
    """Summaries of one subset from each unit's keys sorted ascending (missing ones last)."""
    n_units, width = ordered.shape
    n_labels = len(labels.names)
    present = ordered != _MISSING
    count = present.sum(axis=1)
    keep = count > 0
    stim = (ordered & np.uint64(0xFFFFFFFF)).astype(np.int64)
    value = _unsortable((ordered >> np.uint64(32)).astype(np.uint32)).astype(np.float64)
    label = np.where(present, labels.index[np.minimum(stim, len(labels.index) - 1)], n_labels)
    units = np.arange(n_units) + first
    # Tie groups: a new group starts where the value changes; mid-rank = (first + last) / 2.
    position = np.arange(width)
    starts = np.ones_like(present)
    starts[:, 1:] = (ordered[:, 1:] >> np.uint64(32)) != (ordered[:, :-1] >> np.uint64(32))
    group_first = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    ends = np.ones_like(present)
    ends[:, :-1] = starts[:, 1:]
    group_last = np.flip(np.minimum.accumulate(
        np.flip(np.where(ends, position, width), axis=1), axis=1), axis=1)
    midrank = (group_first + group_last) / 2 + 1
    ties = (group_last - group_first + 1).astype(np.float64)
    tie_term = np.where(present, ties ** 2 - 1, 0).sum(axis=1)
    # Per (unit, label) moments, extremes and rank sums.
    cell = (np.arange(n_units)[:, None] * (n_labels + 1) + label).ravel()
    size = n_units * (n_labels + 1)
    flat_value = np.where(present, value, 0).ravel()
    n = np.bincount(cell, minlength=size).reshape(n_units, -1)[:, :n_labels]
    total = np.bincount(cell, flat_value, minlength=size).reshape(n_units, -1)[:, :n_labels]
    mean = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
    centred = flat_value - np.concatenate([mean, np.zeros((n_units, 1))], axis=1).ravel()[cell]
    m2 = np.bincount(cell, centred ** 2, minlength=size).reshape(n_units, -1)[:, :n_labels]
    rank_sum = np.bincount(cell, np.where(present, midrank, 0).ravel(),
                           minlength=size).reshape(n_units, -1)[:, :n_labels]
    low = np.full(size, np.inf)
    np.minimum.at(low, cell, flat_value)
    high = np.full(size, -np.inf)
    np.maximum.at(high, cell, np.where(present, value, -np.inf).ravel())
    low, high = (a.reshape(n_units, -1)[:, :n_labels] for a in (low, high))
    u_index, l_index = np.nonzero(n)
    class_stats = {
        "unit": units[u_index].astype(np.int32), "label": np.asarray(labels.names, object)[l_index],
        "n": n[u_index, l_index].astype(np.int32), "mean": mean[u_index, l_index],
        "m2": m2[u_index, l_index], "min": low[u_index, l_index].astype(np.float32),
        "max": high[u_index, l_index].astype(np.float32),
        "rank_sum": rank_sum[u_index, l_index]}
    # Top-k: activation descending, ties by stimulus ascending, as the k smallest keys with
    # the value bits inverted (missing ones largest).
    take = min(k, width)
    inverted = np.where(present, (~(ordered >> np.uint64(32)) << np.uint64(32))
                        | (ordered & np.uint64(0xFFFFFFFF)), np.uint64(0xFFFFFFFFFFFFFFFF))
    best = np.partition(inverted, take - 1, axis=1)[:, :take] if take < width else inverted
    best.sort(axis=1)
    ranked = np.arange(take) < np.minimum(count, k)[:, None]
    top_unit = np.broadcast_to(units[:, None], best.shape)[ranked].astype(np.int32)
    top_stimulus = (best[ranked] & np.uint64(0xFFFFFFFF)).astype(np.int32)
    unit_top = {
        "unit": top_unit,
        "rank": np.broadcast_to(np.arange(1, take + 1, dtype=np.int32), best.shape)[ranked],
        "stimulus": top_stimulus,
        "label": np.asarray(labels.names, object)[labels.index[top_stimulus]],
        "activation": _unsortable((~(best[ranked] >> np.uint64(32))).astype(np.uint32))}
    # Per unit: the top stimulus' label, the best other label and the top-class cluster.
    kept = np.nonzero(keep)[0]
    first_rank = unit_top["rank"] == 1
    top_label_index = labels.index[top_stimulus[first_rank]]
    top_activation = unit_top["activation"][first_rank]
    others = high[kept].copy()
    others[np.arange(len(kept)), top_label_index] = -np.inf
    max_other = others.max(axis=1) if n_labels > 1 else np.full(len(kept), -np.inf)
    top_label_value = np.where(label[kept] == top_label_index[:, None], value[kept], -np.inf)
    cluster = (top_label_value > max_other[:, None]).sum(axis=1)
    unit_summaries = {
        "unit": units[kept].astype(np.int32), "n": count[kept].astype(np.int32),
        "top_label": np.asarray(labels.names, object)[top_label_index],
        "top_activation": top_activation.astype(np.float32),
        "max_other": np.where(np.isinf(max_other), np.nan, max_other).astype(np.float32),
        "n_top_label": n[kept, top_label_index].astype(np.int32),
        "top_cluster": cluster.astype(np.int32), "tie_term": tie_term[kept]}
    return {"class_stats": class_stats, "unit_top": unit_top, "unit_summaries": unit_summaries}
