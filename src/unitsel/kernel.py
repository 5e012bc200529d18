"""The summary kernel: one sort per unit, every summary derived from that order.

Each unit's rows become 64-bit keys, the activation's bits made order-preserving in the high
half and the stimulus in the low half, so one ascending sort orders the unit by activation
with ties by stimulus ascending. One walk over the sorted keys gives both subsets' mid-rank
sums and tie terms (the `correct` ranks count only correct rows of each tie group), a walk
from the top gives both top-k lists in the documented tie order, the label counts precision
needs (`PRECISION_TOPS`) and the top-class cluster,
and two passes give the per-label moments (count, mean, M2 about the mean, min, max). Compiled
with numba; `summaries.summarise_files` turns the arrays into the summary tables.

Values follow the definitions in `tests/test_summaries.py`'s reference: -0.0 equals 0.0
(a tie), ranks are 1-based and ascending, tie terms are sum(t^3 - t).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

SUBSETS = ("all", "correct")
_CORES: int = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]


class Summaries(NamedTuple):
    """The kernel's rows as columns (units dense from 0; subset 0 all, 1 correct; labels as
    indices; `max_other` NaN where no other label has a stimulus)."""

    class_stats: tuple[np.ndarray, ...]  # subset, unit, label, n, mean, m2, min, max, rank_sum
    unit_top: tuple[np.ndarray, ...]  # subset, unit, rank, stimulus, label, activation
    unit_summaries: tuple[np.ndarray, ...]  # subset, unit, n, top_label, top_activation,
    # max_other, n_top_label, top_cluster, tie_term, precision_label, most_in_100, most_in_60


# Gale et al.'s precision counts labels among a unit's 100 and 60 most active stimuli.
PRECISION_TOPS = (100, 60)


def summarise(unit: np.ndarray, activation: np.ndarray, stimulus: np.ndarray,
              label_of: np.ndarray, correct_of: np.ndarray, n_units: int, n_labels: int,
              k: int, threads: int | None = None) -> Summaries:
    """Summaries of rows (unit dense in [0, n_units), activation, stimulus) whose stimuli
    are all in the set, numbered 0… in stimulus order: `label_of[stimulus]` is their label's
    index, `correct_of[stimulus]` whether the model classified them correctly. Rows come
    out in unit order. Units are summarised on `threads` threads (default every core)."""
    numba.set_num_threads(min(threads or _CORES, _CORES))
    offsets = np.zeros(n_units + 1, np.int64)
    np.cumsum(np.bincount(unit, minlength=n_units), out=offsets[1:])
    grouped = _keys_by_unit(activation.astype(np.float32, copy=False),
                            stimulus.astype(np.int32, copy=False),
                            unit.astype(np.int32, copy=False), offsets,
                            min(threads or _CORES, _CORES))
    stats, top, units = _kernel(grouped, offsets, label_of.astype(np.int32),
                                correct_of.astype(np.bool_), n_labels, k)
    return Summaries(stats, top, units)


@njit(cache=True, parallel=True)
def _keys_by_unit(activation: np.ndarray, stimulus: np.ndarray, unit: np.ndarray,
                  offsets: np.ndarray, chunks: int) -> np.ndarray:
    """Each row's key, grouped by unit: a stable counting sort (unit u's keys at offsets[u]…
    in row order), in `chunks` parallel chunks of rows, each with its own slice of every
    unit's range. A key's ascending order is activation ascending, then stimulus ascending:
    the float's bits made order-preserving above, the stimulus (unsigned) below. -0.0 becomes
    0.0 first, so the two tie."""
    n, n_units = len(activation), len(offsets) - 1
    counts = np.zeros((chunks, n_units), np.int64)
    for c in prange(chunks):
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            counts[c, unit[i]] += 1
    fill = np.empty((chunks, n_units), np.int64)
    for u in range(n_units):
        at = offsets[u]
        for c in range(chunks):
            fill[c, u] = at
            at += counts[c, u]
    bits = (activation + np.float32(0.0)).view(np.uint32)
    out = np.empty(n, np.uint64)
    sign = np.uint32(0x80000000)
    for c in prange(chunks):
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            b = bits[i]
            ordered = ~b if b & sign else b | sign
            out[fill[c, unit[i]]] = (np.uint64(ordered) << np.uint64(32)) | np.uint64(
                np.int64(stimulus[i]) + 2**31)
            fill[c, unit[i]] += 1
    return out


# Below this many rows a unit's keys are sorted by comparison; above, by radix.
_RADIX_ROWS = 4096


@njit(cache=True)
def _sorted_keys(keys: np.ndarray) -> np.ndarray:
    """A unit's keys in ascending order. Rows usually arrive in stimulus order (the low
    halves ascending), and then a stable LSD radix sort of the high halves alone (three
    11-bit digits, a digit every key shares skipped) orders them completely, 3.5-4.5x faster
    than a comparison sort of 10⁴ to 10⁵ keys; otherwise, or for few keys, `np.sort`."""
    n = len(keys)
    low = np.uint64(0xFFFFFFFF)
    in_order = True
    for i in range(1, n):
        if keys[i] & low < keys[i - 1] & low:
            in_order = False
            break
    if n < _RADIX_ROWS or not in_order:
        return np.sort(keys)
    counts = np.zeros((3, 2048), np.int64)
    for i in range(n):
        high = np.uint32(keys[i] >> np.uint64(32))
        counts[0, high & np.uint32(2047)] += 1
        counts[1, (high >> np.uint32(11)) & np.uint32(2047)] += 1
        counts[2, high >> np.uint32(22)] += 1
    source, target = keys.copy(), np.empty(n, np.uint64)
    for d in range(3):
        if counts[d].max() == n:
            continue
        at = 0
        for b in range(2048):
            at, counts[d, b] = at + counts[d, b], at
        shift = np.uint64(32 + 11 * d)
        for i in range(n):
            b = (source[i] >> shift) & np.uint64(2047)
            target[counts[d, b]] = source[i]
            counts[d, b] += 1
        source, target = target, source
    return source


@njit(cache=True)
def _value(key: np.uint64) -> np.float32:
    bits = np.uint32(key >> np.uint64(32))
    bits = bits & np.uint32(0x7FFFFFFF) if bits & np.uint32(0x80000000) else ~bits
    value: np.float32 = np.array([bits], np.uint32).view(np.float32)[0]
    return value


@njit(cache=True, parallel=True)
def _kernel(grouped: np.ndarray, offsets: np.ndarray, label_of: np.ndarray,
            correct_of: np.ndarray, n_labels: int, k: int
            ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Units in parallel (numba's threads), each writing its rows into slots of its own
    (at most 2·min(labels, n) class rows, 2·min(k, n) top rows, 2 unit rows), which are then
    packed in unit order."""
    n_units = len(offsets) - 1
    sizes = offsets[1:] - offsets[:-1]
    stat_at = np.zeros(n_units + 1, np.int64)
    stat_at[1:] = np.cumsum(2 * np.minimum(sizes, n_labels))
    top_at = np.zeros(n_units + 1, np.int64)
    top_at[1:] = np.cumsum(2 * np.minimum(sizes, k))
    stat_used = np.zeros(n_units, np.int64)
    top_used = np.zeros(n_units, np.int64)
    unit_used = np.zeros(n_units, np.int64)
    most_stats, most_top = stat_at[-1], top_at[-1]
    s_subset = np.empty(most_stats, np.int8)
    s_label = np.empty(most_stats, np.int32)
    s_n = np.empty(most_stats, np.int32)
    s_mean = np.empty(most_stats, np.float64)
    s_m2 = np.empty(most_stats, np.float64)
    s_min = np.empty(most_stats, np.float32)
    s_max = np.empty(most_stats, np.float32)
    s_rank = np.empty(most_stats, np.float64)
    t_subset = np.empty(most_top, np.int8)
    t_rank = np.empty(most_top, np.int32)
    t_stimulus = np.empty(most_top, np.int32)
    t_label = np.empty(most_top, np.int32)
    t_value = np.empty(most_top, np.float32)
    u_subset = np.empty(2 * n_units, np.int8)
    u_n = np.empty(2 * n_units, np.int32)
    u_top_label = np.empty(2 * n_units, np.int32)
    u_top_value = np.empty(2 * n_units, np.float32)
    u_max_other = np.empty(2 * n_units, np.float32)
    u_n_top = np.empty(2 * n_units, np.int32)
    u_cluster = np.empty(2 * n_units, np.int32)
    u_tie = np.empty(2 * n_units, np.float64)
    u_precision_label = np.empty(2 * n_units, np.int32)
    u_most = np.empty((2, 2 * n_units), np.int32)
    reach = max(k, PRECISION_TOPS[0])
    high = np.uint64(32)
    for u in prange(n_units):
        first, n = offsets[u], sizes[u]
        if n == 0:
            continue
        keys = _sorted_keys(grouped[first:first + n])
        values = np.empty(n, np.float32)
        labels = np.empty(n, np.int32)
        correct = np.empty(n, np.bool_)
        stimuli = np.empty(n, np.int32)
        for i in range(n):
            values[i] = _value(keys[i])
            stimuli[i] = np.int32(np.int64(keys[i] & np.uint64(0xFFFFFFFF)) - 2**31)
            labels[i] = label_of[stimuli[i]]
            correct[i] = correct_of[stimuli[i]]
        # Per label and subset (row 0 all, row 1 correct).
        count = np.zeros((2, n_labels), np.int64)
        total = np.zeros((2, n_labels), np.float64)
        m2 = np.zeros((2, n_labels), np.float64)
        lo = np.zeros((2, n_labels), np.float32)
        hi = np.zeros((2, n_labels), np.float32)
        rank_sum = np.zeros((2, n_labels), np.float64)
        # Ascending walk by tie groups: mid-ranks and tie terms of both subsets, sums.
        tie = np.zeros(2)
        seen_correct = 0
        i = 0
        while i < n:
            j = i + 1
            while j < n and (keys[j] >> high) == (keys[i] >> high):
                j += 1
            c = 0
            for r in range(i, j):
                c += correct[r]
            tie[0] += float(j - i) ** 3 - (j - i)  # in floats: t^3 overflows int64 at 2·10⁶
            tie[1] += float(c) ** 3 - c
            mid_all = (i + 1 + j) / 2.0
            mid_correct = (2 * seen_correct + 1 + c) / 2.0
            for r in range(i, j):
                label = labels[r]
                for s in range(2):
                    if s == 1 and not correct[r]:
                        continue
                    if count[s, label] == 0:
                        lo[s, label] = values[r]
                        hi[s, label] = values[r]
                    else:
                        lo[s, label] = min(lo[s, label], values[r])
                        hi[s, label] = max(hi[s, label], values[r])
                    count[s, label] += 1
                    total[s, label] += values[r]
                    rank_sum[s, label] += mid_all if s == 0 else mid_correct
            seen_correct += c
            i = j
        for r in range(n):  # M2 about each label's mean: a second pass, as numpy does
            label = labels[r]
            for s in range(2):
                if s == 1 and not correct[r]:
                    continue
                d = values[r] - total[s, label] / count[s, label]
                m2[s, label] += d * d
        ns, nt, nu = stat_at[u], top_at[u], 2 * u
        for s in range(2):
            size = n if s == 0 else seen_correct
            if size == 0:
                continue
            for label in range(n_labels):
                if count[s, label] > 0:
                    s_subset[ns] = s
                    s_label[ns] = label
                    s_n[ns] = count[s, label]
                    s_mean[ns] = total[s, label] / count[s, label]
                    s_m2[ns] = m2[s, label]
                    s_min[ns] = lo[s, label]
                    s_max[ns] = hi[s, label]
                    s_rank[ns] = rank_sum[s, label]
                    ns += 1
            # Top-k from the top: tie groups downwards, each in stimulus order; on to rank
            # 100 for precision's counts of each label (in the top 100 and 60, first rank).
            rank = 0
            top_label = -1
            top_value = np.float32(0.0)
            in_top = np.zeros((2, n_labels), np.int32)
            first_rank = np.zeros(n_labels, np.int32)
            j = n
            while j > 0 and rank < reach:
                i = j - 1
                while i > 0 and (keys[i - 1] >> high) == (keys[j - 1] >> high):
                    i -= 1
                for r in range(i, j):
                    if rank == reach:
                        break
                    if s == 1 and not correct[r]:
                        continue
                    rank += 1
                    if rank == 1:
                        top_label = labels[r]
                        top_value = values[r]
                    for w in range(2):
                        if rank <= PRECISION_TOPS[w]:
                            in_top[w, labels[r]] += 1
                    if first_rank[labels[r]] == 0:
                        first_rank[labels[r]] = rank
                    if rank > k:
                        continue
                    t_subset[nt] = s
                    t_rank[nt] = rank
                    t_stimulus[nt] = stimuli[r]
                    t_label[nt] = labels[r]
                    t_value[nt] = values[r]
                    nt += 1
                j = i
            other = False
            max_other = np.float32(0.0)
            for label in range(n_labels):
                if label != top_label and count[s, label] > 0:
                    if not other or hi[s, label] > max_other:
                        max_other = hi[s, label]
                    other = True
            cluster = count[s, top_label]
            if other:  # the rows above every other label's best are all the top label's
                cluster = 0
                for r in range(n - 1, -1, -1):
                    if values[r] <= max_other:
                        break
                    if s == 0 or correct[r]:
                        cluster += 1
            u_subset[nu] = s
            u_n[nu] = size
            u_top_label[nu] = top_label
            u_top_value[nu] = top_value
            u_max_other[nu] = max_other if other else np.nan
            u_n_top[nu] = count[s, top_label]
            u_cluster[nu] = cluster
            u_tie[nu] = tie[s]
            # The most frequent label of the top 100, ties by the first ranked.
            best = top_label
            for label in range(n_labels):
                if in_top[0, label] > in_top[0, best] or (
                        in_top[0, label] == in_top[0, best] and in_top[0, label] > 0
                        and first_rank[label] < first_rank[best]):
                    best = label
            u_precision_label[nu] = best
            u_most[0, nu] = in_top[0].max()
            u_most[1, nu] = in_top[1].max()
            nu += 1
        stat_used[u] = ns - stat_at[u]
        top_used[u] = nt - top_at[u]
        unit_used[u] = nu - 2 * u
    stat_keep = _used(stat_at[:-1], stat_used, most_stats)
    top_keep = _used(top_at[:-1], top_used, most_top)
    unit_keep = _used(2 * np.arange(n_units), unit_used, 2 * n_units)
    units = np.arange(n_units, dtype=np.int32)
    return ((s_subset[stat_keep], np.repeat(units, stat_used), s_label[stat_keep],
             s_n[stat_keep], s_mean[stat_keep], s_m2[stat_keep], s_min[stat_keep],
             s_max[stat_keep], s_rank[stat_keep]),
            (t_subset[top_keep], np.repeat(units, top_used), t_rank[top_keep],
             t_stimulus[top_keep], t_label[top_keep], t_value[top_keep]),
            (u_subset[unit_keep], np.repeat(units, unit_used), u_n[unit_keep],
             u_top_label[unit_keep], u_top_value[unit_keep], u_max_other[unit_keep],
             u_n_top[unit_keep], u_cluster[unit_keep], u_tie[unit_keep],
             u_precision_label[unit_keep], u_most[0][unit_keep], u_most[1][unit_keep]))


@njit(cache=True)
def _used(starts: np.ndarray, used: np.ndarray, size: int) -> np.ndarray:
    """The slots units filled (`used[u]` from `starts[u]`), as a mask over all `size`."""
    keep = np.zeros(size, np.bool_)
    for u in range(len(starts)):
        keep[starts[u]:starts[u] + used[u]] = True
    return keep


def main() -> None:
    """`python -m unitsel.kernel`: compile the kernel into numba's on-disk cache (`make`
    runs it), so the first summaries a user builds do not wait half a minute for it."""
    summarise(np.zeros(2, np.int32), np.ones(2, np.float32), np.arange(2, dtype=np.int32),
              np.zeros(2, np.int32), np.ones(2, np.bool_), 1, 1, 1)
    print("summary kernel compiled")


if __name__ == "__main__":
    main()
