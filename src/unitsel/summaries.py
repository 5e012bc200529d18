"""Per-partition summaries of raw activations, so metric macros never re-scan them.

For every activations partition (model, stimulus set, layer, pool) and subset (`all`
stimuli, or `correct`ly classified ones when predictions exist), one sort per unit of each
data file (`unitsel.kernel`) writes:

- `class_stats`: per unit and label the count, mean, M2 (sum of squared deviations), min, max
  and the sum of the label's mid-ranks among the unit's activations (for rank-sum tests);
- `unit_top`: per unit its top-k stimuli (activation descending, ties by stimulus ascending);
- `unit_summaries`: per unit the top label, the best activation of every other label, the
  top-class cluster size (the top label's stimuli strictly above all others), the tie term
  sum(t^3 - t) over groups of equal activations and the label counts precision needs;
- `summary_builds`: k and the layout version the summaries were built with.

Summaries are built inside the commit of the job that writes their inputs (activations, the
stimulus set, the predictions), from that commit's own view of the lake, by the commit step
`Build`, so a snapshot's summaries always agree with its activations. `stale` lists those
built by an older layout (or never built: a migrated warehouse) for a job to rebuild.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from unitsel import compute, lake, storage
from unitsel.schema import ACTIVATIONS, PREDICTIONS, STIMULI, SUMMARY_BUILDS, TABLES, Table
from unitsel.sqlfiles import sql_string

if TYPE_CHECKING:
    import duckdb

TOP_K = 100
# Bump when the summaries' content changes: every existing summary then counts as stale.
LAYOUT_VERSION = 4
Partition = dict[str, str]
# A block of a data file's rows kept in memory by the job that writes it: the stimuli (ids),
# the first unit and the stimuli x units matrix of activations.
Held = tuple[np.ndarray, int, np.ndarray]
# Bytes of such blocks a job keeps, so that its commit summarises their files without reading
# them back (4 bytes an activation: 10⁸ rows fit); files beyond it are read back.
HELD_BYTES = 1 << 30
# (data file, digest of its partition's labels, k): what a summary file was built from.
FileKey = tuple[str, str, int]
_KEYS = ACTIVATIONS.partition_by
_DERIVED = [t for t in TABLES.values() if t.derived]


def _where(part: Partition, keys: tuple[str, ...] = _KEYS) -> str:
    return " AND ".join(f"{k} = {sql_string(part[k])}" for k in keys)


class Build:
    """The commit step that keeps a job's summaries current, with its own state: the
    partitions to rebuild whatever the job writes, and the summary files earlier attempts of
    the same commit wrote (a retried commit runs only what changed)."""

    def __init__(self, root: Path, data: str, k: int = TOP_K) -> None:
        self.root = root
        self.data = data
        self.k = k
        self.rebuild: list[Partition] = []
        self.files: dict[FileKey, list[tuple[str, str]]] = {}
        self.used: set[FileKey] = set()  # by the latest attempt
        self.held: dict[str, list[Held]] = {}  # data file: its rows, kept by the job

    def __call__(self, con: duckdb.DuckDBPyConnection,
                 written: Mapping[str, list[tuple[Partition, str]]], runner: compute.Runner,
                 progress: bool) -> None:
        """Inside the commit's transaction (`con`), rebuild the summaries of every
        activations partition whose activations, stimulus set or predictions the job writes
        (`written`: per table its (partition, data file) pairs), and of `rebuild`."""
        own: dict[tuple[str, ...], list[str]] = {}
        for part, path in written.get(ACTIVATIONS.name, []):
            own.setdefault(tuple(part.values()), []).append(path)
        parts = {tuple(p.values()): p for p in [
            *(part for part, _ in written.get(ACTIVATIONS.name, [])), *self.rebuild]}
        sets = {p["stimulus_set"] for p, _ in written.get(STIMULI.name, [])}
        runs = {(p["model_id"], p["stimulus_set"]) for p, _ in written.get(PREDICTIONS.name, [])}
        if not (parts or sets or runs):
            return  # an analysis: nothing summaries derive from (each catalog read costs ms)
        committed = lake.partition_files(con, self.root, ACTIVATIONS)
        for key in committed:
            part = dict(zip(_KEYS, key, strict=True))
            if part["stimulus_set"] in sets or (part["model_id"], part["stimulus_set"]) in runs:
                parts.setdefault(key, part)
        self._replace(con, [(part, own.get(key) or committed.get(key, []))
                            for key, part in parts.items()], runner, progress)

    def _replace(self, con: duckdb.DuckDBPyConnection, parts: list[tuple[Partition, list[str]]],
                 runner: compute.Runner, progress: bool) -> None:
        """Replace the summaries of `parts` (each with its activations data files). Data files
        are summarised by tasks on `runner`: a large file alone, small files of one model and
        stimulus set together (`lake.DATA_FILE_ROWS`); the commit registers what they write. A
        file whose labels are those of an earlier attempt is not summarised again."""
        labels: dict[tuple[str, str], tuple[pl.DataFrame, str]] = {}
        planned: list[tuple[Partition, list[FileKey]]] = []
        for part, paths in parts:
            run = (part["model_id"], part["stimulus_set"])
            if run not in labels:  # one query per model and stimulus set, not per partition
                frame = _labels(con, part)
                labels[run] = (frame, _digest(frame))
            planned.append((part, [(path, labels[run][1], self.k) for path in paths]))
        # Files whose rows the job holds are summarised here from memory, the others by
        # tasks on `runner` that read them.
        for held, run_on in ((True, compute.Runner()), (False, runner)):
            tasks: list[tuple[object, ...]] = []
            task_keys: list[list[FileKey]] = []
            task_rows: list[int] = []
            for run, (frame, _) in labels.items():
                todo = [(part, key) for part, keys in planned for key in keys
                        if (part["model_id"], part["stimulus_set"]) == run
                        and key not in self.files and (key[0] in self.held) == held]
                for batch, rows in _batches(todo):
                    tasks.append((self.data, [(part, key[0]) for part, key in batch],
                                  frame, self.k, run_on.threads,
                                  {key[0]: self.held[key[0]] for _, key in batch} if held
                                  else {}))
                    task_keys.append([key for _, key in batch])
                    task_rows.append(rows)
            # Progress in activation rows: a 10⁹-row layer's bar moves file by file.
            done = run_on.map(summarise_files, tasks, desc="summaries", unit="row",
                              sizes=task_rows, progress=progress)
            for keys, outputs in zip(task_keys, done, strict=True):
                self.files.update(zip(keys, outputs, strict=True))
        self.used = {key for _, keys in planned for key in keys}
        for t in _DERIVED:
            lake.delete_partitions(con, self.root, t, [part for part, _ in planned])
            lake.register_files(con, t, [path for _, keys in planned for key in keys
                                         for name, path in self.files[key] if name == t.name])
        if planned:
            builds = pl.DataFrame([part for part, _ in planned]).with_columns(
                k=pl.lit(self.k, pl.Int32), layout=pl.lit(LAYOUT_VERSION, pl.Int32))
            con.register("unitsel_builds", builds)
            con.execute(f"INSERT INTO {lake.ALIAS}.{SUMMARY_BUILDS.name} BY NAME "
                        "SELECT * FROM unitsel_builds")
            con.unregister("unitsel_builds")

    def discard(self, committed: bool) -> None:
        """Delete the summary files no committed snapshot lists (attempts that lost)."""
        for key, outputs in self.files.items():
            if not committed or key not in self.used:
                for _, output in outputs:
                    storage.remove(output)


def stale(con: duckdb.DuckDBPyConnection, root: Path, *, rebuild: bool = False
          ) -> list[Partition]:
    """Every activations partition whose summaries were built with another k or layout or
    never built (a migrated warehouse), or all of them with `rebuild`."""
    built = {row[:4]: row[4:] for row in con.sql(
        f"SELECT {', '.join(_KEYS)}, k, layout FROM {lake.ALIAS}.{SUMMARY_BUILDS.name}"
    ).fetchall()}
    return [dict(zip(_KEYS, key, strict=True))
            for key in lake.partition_files(con, root, ACTIVATIONS)
            if rebuild or built.get(key) != (TOP_K, LAYOUT_VERSION)]


def _labels(con: duckdb.DuckDBPyConnection, part: Partition) -> pl.DataFrame:
    """The stimulus set's labels and the model's correctness (stimulus, label, is_correct)."""
    return con.sql(f"""
        SELECT s.stimulus, s.label, p.is_correct
        FROM {lake.ALIAS}.{STIMULI.name} s
        LEFT JOIN (SELECT stimulus, is_correct FROM {lake.ALIAS}.{PREDICTIONS.name}
                   WHERE {_where(part, ('model_id', 'stimulus_set'))}) p USING (stimulus)
        WHERE {_where(part, ('stimulus_set',))}""").pl()


def _batches(files: list[tuple[Partition, FileKey]]
             ) -> list[tuple[list[tuple[Partition, FileKey]], int]]:
    """Files grouped into tasks of at most `lake.DATA_FILE_ROWS` rows (a larger file is a task
    of its own), so that a network's hundred small layers are a few tasks, not a hundred; with
    each task's row count."""
    import pyarrow.parquet as pq

    batches: list[tuple[list[tuple[Partition, FileKey]], int]] = []
    limit = rows = lake.DATA_FILE_ROWS
    for item in files:
        fs, inner = storage.filesystem(item[1][0])
        file_rows = pq.read_metadata(inner, filesystem=fs).num_rows
        if rows + file_rows > limit:
            batches.append(([], 0))
            rows = 0
        batches[-1][0].append(item)
        rows += file_rows
        batches[-1] = (batches[-1][0], rows)
    return batches


def _digest(labels: pl.DataFrame) -> str:
    return hashlib.sha256(labels.write_ipc(None).getvalue()).hexdigest()


def summarise_files(data: str, files: list[tuple[Partition, str]], labels: pl.DataFrame,
                    k: int, threads: int | None = None,
                    held: Mapping[str, list[Held]] | None = None
                    ) -> list[list[tuple[str, str]]]:
    """Summarise activations data files (each some units of a partition, all their stimuli)
    of one model and stimulus set, given their labels (stimulus, label, is_correct), with one
    sort per unit (`unitsel.kernel`), and write each summary table's rows of each file's units
    to a data file in the file's partition under the data path `data`; memory is bounded by
    the files (about 40 bytes a row). Returns, per file, its (table, summary file) pairs. Runs
    in any process that reaches the data path (a Dask worker: a shared folder, or the bucket
    with the AWS_* variables), its units on `threads` threads (default every core); the rows
    of a file in `held` are taken from there instead of the file."""
    from unitsel.kernel import summarise

    # Stimuli of the set, numbered in stimulus order: the kernel's ties then follow stimuli.
    labels = labels.sort("stimulus")
    stimuli = labels["stimulus"].to_numpy()
    names = sorted(set(labels["label"].to_list()))
    label_of = labels["label"].replace_strict(names, list(range(len(names))),
                                              return_dtype=pl.Int32).to_numpy()
    correct_of = labels["is_correct"].fill_null(False).to_numpy()
    outputs: list[list[tuple[str, str]]] = [[] for _ in files]
    if not len(stimuli):
        return outputs
    # The files' units are renumbered into one dense range (file i's units from base_i on),
    # so one kernel call sees one block of units and the rows are split per file at the end.
    columns: dict[str, list[np.ndarray]] = {"unit": [], "activation": [], "stimulus": []}
    spans = []  # (file index, base, lowest unit, unit count)
    base = 0
    for i, (_, path) in enumerate(files):
        unit, stimulus, activation = _rows(path, (held or {}).get(path))
        if not len(unit):
            continue  # no rows, no summaries
        low, high = int(unit.min()), int(unit.max())
        position = _positions(stimuli, stimulus)
        known = position >= 0
        if not known.all():  # rows of stimuli outside the set are not summarised
            unit, position, activation = unit[known], position[known], activation[known]
        columns["unit"].append((unit - low + base).astype(np.int32))
        columns["stimulus"].append(position)
        columns["activation"].append(activation)
        spans.append((i, base, low, high - low + 1))
        base += high - low + 1
    if not spans:
        return outputs
    summary = summarise(np.concatenate(columns["unit"]),
                        np.concatenate(columns["activation"]),
                        np.concatenate(columns["stimulus"]), label_of, correct_of, base,
                        len(names), max(1, min(k, labels.height)), threads)
    found = summary._asdict()
    found["unit_top"] = (*found["unit_top"][:3], stimuli[found["unit_top"][3]],
                         *found["unit_top"][4:])
    writes: list[tuple[int, str, Table, dict[str, np.ndarray]]] = []
    for name, arrays in found.items():
        t = TABLES[name]
        out = dict(zip([c.name for c in t.columns if c.name not in _KEYS], arrays,
                        strict=True))
        # The kernel's rows come in unit order: each file's units are one slice.
        bounds = np.searchsorted(out["unit"], [[first, first + count] for _, first, _, count
                                                in spans])
        for (i, first, low, _), (begin, end) in zip(spans, bounds, strict=True):
            if begin == end:
                continue
            rows = {c: v[begin:end] for c, v in out.items()}
            rows["unit"] = (rows["unit"] - first + low).astype(np.int32)
            writes.append((i, name, t, rows))
    # Parquet encoding releases the GIL: a network's hundreds of small files are written
    # side by side, on the threads the kernel used.
    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
        written = pool.map(lambda w: _write_summary(data, w[2], files[w[0]][0], w[3], names),
                           writes)
        for (i, name, _, _), output in zip(writes, written, strict=True):
            outputs[i].append((name, output))
    return outputs


def _rows(path: str, held: list[Held] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A data file's unit, stimulus and activation columns: from the blocks the job held,
    in the file's row order, or read from the file."""
    import pyarrow.parquet as pq

    if held is None:
        fs, inner = storage.filesystem(path)
        table = pq.read_table(inner, columns=["unit", "stimulus", "activation"], filesystem=fs)
        return tuple(table[c].to_numpy() for c in ("unit", "stimulus", "activation"))
    return (np.concatenate([np.tile(np.arange(first, first + m.shape[1], dtype=np.int32),
                                    m.shape[0]) for _, first, m in held]),
            np.concatenate([np.repeat(ids, m.shape[1]) for ids, _, m in held]),
            np.concatenate([m.ravel() for _, _, m in held]))


def _positions(stimuli: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Each id's position in the sorted `stimuli`, -1 when it is none of them: a lookup
    table over the ids' range (a gather, several times faster than a binary search), or a
    binary search when the ids are too sparse for one."""
    first, last = int(stimuli[0]), int(stimuli[-1])
    if last - first < 4 * len(stimuli) + 1024:
        lookup = np.full(last - first + 1, -1, np.int32)
        lookup[stimuli - first] = np.arange(len(stimuli), dtype=np.int32)
        inside = (ids >= first) & (ids <= last)
        found = lookup[np.clip(ids, first, last) - first]
        return found if inside.all() else np.where(inside, found, -1)
    position = np.searchsorted(stimuli, ids)
    hit = stimuli[np.minimum(position, len(stimuli) - 1)] == ids
    return np.where(hit, position, -1).astype(np.int32)


def _write_summary(data: str, t: Table, part: Partition, rows: dict[str, np.ndarray],
                   names: list[str]) -> str:
    """One summary data file of `t` in `part`'s folder: the partition keys as constant
    dictionary columns, subset and label columns as dictionaries of their names (the
    kernel's indices), NaN `max_other` as NULL."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from unitsel.kernel import SUBSETS

    n = len(rows["unit"])
    words = {"subset": list(SUBSETS), "label": names, "top_label": names,
             "precision_label": names}
    columns = []
    for c in t.columns:
        if c.name in part:
            column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)),
                                                    pa.array([part[c.name]]))
        elif c.name in words:
            column = pa.DictionaryArray.from_arrays(pa.array(rows[c.name].astype(np.int32)),
                                                    pa.array(words[c.name]))
        else:
            values = rows[c.name]
            column = pa.array(values, mask=np.isnan(values) if c.nullable else None).cast(
                pl.Series(dtype=c.dtype).to_arrow().type)
        columns.append(column)
    output = storage.join(lake.partition_dir(data, t, part),
                          f"unitsel-{uuid.uuid4().hex}.parquet")
    storage.prepare(output)
    fs, inner = storage.filesystem(output)
    pq.write_table(pa.table(columns, names=[c.name for c in t.columns]), inner, filesystem=fs,
                   store_schema=False)  # no Arrow schema: readers see plain strings
    return output
