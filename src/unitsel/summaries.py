"""Per-partition summaries of raw activations, so metric macros never re-scan them.

For every activations partition (model, stimulus set, layer, pool) and subset (`all`
stimuli, or `correct`ly classified ones when predictions exist), one pass of DuckDB over the
partition writes:

- `class_stats`: per unit and label the count, mean, M2 (sum of squared deviations), min, max
  and the sum of the label's mid-ranks among the unit's activations (for rank-sum tests);
- `unit_top`: per unit its top-k stimuli (activation descending, ties by stimulus ascending);
- `unit_summaries`: per unit the top label, the best activation of every other label, the
  top-class cluster size (the top label's stimuli strictly above all others) and the tie term
  sum(t^3 - t) over groups of equal activations;
- `summary_builds`: k and the layout version the summaries were built with.

Summaries are built inside the commit of the job that writes their inputs (activations, the
stimulus set, the predictions), from that commit's own view of the lake, by the commit step
`Build`, so a snapshot's summaries always agree with its activations. `stale` lists those
built by an older layout (or never built: a migrated warehouse) for a job to rebuild.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from unitsel import lake
from unitsel.schema import ACTIVATIONS, PREDICTIONS, STIMULI, SUMMARY_BUILDS, TABLES
from unitsel.sqlfiles import sql_string

if TYPE_CHECKING:
    import duckdb

    from unitsel.compute import Runner

TOP_K = 100
TASK_MEMORY = "1GB"  # DuckDB's memory limit in one file's summary pass
TOP_STATES = 2_000_000  # top-k entries kept at once (units x k) in a task's pass
# Bump when the summaries' content changes: every existing summary then counts as stale.
LAYOUT_VERSION = 3
Partition = dict[str, str]
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

    def __init__(self, root: Path, k: int = TOP_K) -> None:
        self.root = root
        self.k = k
        self.rebuild: list[Partition] = []
        self.files: dict[FileKey, list[tuple[str, str]]] = {}
        self.used: set[FileKey] = set()  # by the latest attempt

    def __call__(self, con: duckdb.DuckDBPyConnection,
                 written: Mapping[str, list[tuple[Partition, str]]], runner: Runner,
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
        committed = lake.partition_files(con, self.root, ACTIVATIONS)
        for key in committed:
            part = dict(zip(_KEYS, key, strict=True))
            if part["stimulus_set"] in sets or (part["model_id"], part["stimulus_set"]) in runs:
                parts.setdefault(key, part)
        self._replace(con, [(part, own.get(key) or committed.get(key, []))
                            for key, part in parts.items()], runner, progress)

    def _replace(self, con: duckdb.DuckDBPyConnection, parts: list[tuple[Partition, list[str]]],
                 runner: Runner, progress: bool) -> None:
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
        tasks: list[tuple[object, ...]] = []
        task_keys: list[list[FileKey]] = []
        task_rows: list[int] = []
        for run, (frame, _) in labels.items():
            todo = [(part, key) for part, keys in planned for key in keys
                    if (part["model_id"], part["stimulus_set"]) == run
                    and key not in self.files]
            for batch, rows in _batches(todo):
                tasks.append((str(self.root), [(part, key[0]) for part, key in batch], frame,
                              self.k, runner.threads))
                task_keys.append([key for _, key in batch])
                task_rows.append(rows)
        # Progress in activation rows: a 10⁹-row layer's bar moves file by file.
        done = runner.map(summarise_files, tasks, desc="summaries", unit="row",
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
                    Path(output).unlink(missing_ok=True)


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
        file_rows = pq.read_metadata(item[1][0]).num_rows
        if rows + file_rows > limit:
            batches.append(([], 0))
            rows = 0
        batches[-1][0].append(item)
        rows += file_rows
        batches[-1] = (batches[-1][0], rows)
    return batches


def _digest(labels: pl.DataFrame) -> str:
    return hashlib.sha256(labels.write_ipc(None).getvalue()).hexdigest()


def summarise_files(root: str, files: list[tuple[Partition, str]], labels: pl.DataFrame,
                    k: int, threads: int | None = None) -> list[list[tuple[str, str]]]:
    """Summarise activations data files (each some units of a partition, all their stimuli)
    of one model and stimulus set in one DuckDB pass, given their labels (stimulus, label,
    is_correct), and write each summary table's rows of each file's units to a data file in
    the file's partition; memory is bounded by the files. Returns, per file, its (table,
    summary file) pairs. Runs in any process that sees `root` (a Dask worker)."""
    import duckdb

    # DuckDB spills what does not fit under the limit, so a task's memory stays bounded
    # whatever the files hold.
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": TASK_MEMORY, "temp_directory": tempfile.gettempdir(),
        "preserve_insertion_order": False}
    if threads is not None:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    con.register("labels_in", labels)
    # The files' units are renumbered into one dense range (file i's units from base_i on),
    # so the pass below sees one block of units and decodes them per file at the end.
    paths = [path for _, path in files]
    ranges = dict(con.execute(
        "SELECT filename, [min(unit), max(unit)] FROM read_parquet(?, filename = true) "
        "GROUP BY filename", [paths]).fetchall())
    base, rows = 0, []
    for i, (part, path) in enumerate(files):
        if path not in ranges:
            continue  # no rows, no summaries
        low, high = ranges[path]
        rows.append({"file": i, "filename": path, "base": base, "low": low,
                     **{key: part[key] for key in _KEYS}})
        base += high - low + 1
    outputs: list[list[tuple[str, str]]] = [[] for _ in files]
    if not rows:
        con.close()
        return outputs
    con.register("files_in", pl.DataFrame(rows))
    # The passes below read the block five times: decode the files once.
    con.execute("""
        CREATE TEMP TABLE acts AS
        SELECT (a.unit - f.low + f.base)::INTEGER AS unit, a.stimulus, a.activation
        FROM read_parquet($paths, filename = true) a JOIN files_in f USING (filename)""",
                {"paths": paths})
    # A unit has at most one top entry per stimulus: asking DuckDB for more only makes each
    # unit's top-k state larger (wide layers on few stimuli).
    queries = _summarise(con, "acts", "(SELECT stimulus, label FROM labels_in)",
                         "(SELECT stimulus, is_correct FROM labels_in)",
                         max(1, min(k, labels.height)))
    (Path(root) / lake.DATA_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Path(root) / lake.DATA_DIR,
                                     prefix=".unitsel-summaries-") as scratch:
        for name, query in queries.items():
            # One COPY per table, split by file: DuckDB writes file i's rows under file=i.
            con.execute(f"""
                COPY (SELECT f.file, {', '.join(f'f.{key}' for key in _KEYS)},
                             q.* REPLACE ((q.unit - f.base + f.low)::INTEGER AS unit)
                      FROM ({query}) q ASOF JOIN files_in f ON q.unit >= f.base)
                TO {sql_string(f"{scratch}/{name}")}
                (FORMAT parquet, PARTITION_BY (file))""")
            for i, (part, _) in enumerate(files):
                written = sorted(Path(scratch, name, f"file={i}").glob("*.parquet"))
                if not written:
                    continue
                folder = lake.partition_dir(Path(root), TABLES[name], part)
                folder.mkdir(parents=True, exist_ok=True)
                for piece in written:
                    output = folder / f"unitsel-{uuid.uuid4().hex}.parquet"
                    piece.rename(output)
                    outputs[i].append((name, str(output)))
    con.close()
    return outputs


def _summarise(con: duckdb.DuckDBPyConnection, acts: str, stimuli: str, correct: str,
               k: int) -> dict[str, str]:
    """Temp tables of one partition's summaries, and per summary table the query of its rows.
    `acts`, `stimuli` and `correct` are relations (SQL text) of the partition's inputs."""
    # Three passes over the raw file: moments per (unit, label, correctness), merged per subset
    # with Chan et al.'s pairwise update for M2; mid-ranks per unit and subset; and each unit's
    # top-k for both subsets.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fine AS
        SELECT a.unit, s.label, coalesce(p.is_correct, false) AS correct,
               count(*) AS n, avg(a.activation) AS mean,
               var_pop(a.activation) * count(*) AS m2,
               min(a.activation) AS min, max(a.activation) AS max
        FROM {acts} a
        JOIN {stimuli} s USING (stimulus)
        LEFT JOIN {correct} p USING (stimulus)
        GROUP BY ALL;
        CREATE OR REPLACE TEMP TABLE classes AS
        WITH grouped AS (
            SELECT 'all' AS subset, * FROM fine
            UNION ALL
            SELECT 'correct' AS subset, * FROM fine WHERE correct
        ), g AS (
            SELECT *, sum(n * mean) OVER w / sum(n) OVER w AS pooled_mean
            FROM grouped WINDOW w AS (PARTITION BY subset, unit, label)
        )
        SELECT subset, unit, label, sum(n)::INTEGER AS n, any_value(pooled_mean) AS mean,
               sum(m2 + n * (mean - pooled_mean) ** 2) AS m2,
               min(min)::FLOAT AS min, max(max)::FLOAT AS max
        FROM g GROUP BY subset, unit, label;
        -- One sort per subset gives both ends of each tie group: rank() its first rank and the
        -- RANGE frame's count(*) its last, so the mid-rank is their mean and t = last-first+1.
        -- The sorted rows carry a small label index, not the label, to keep the sort lean.
        CREATE OR REPLACE TEMP TABLE label_index AS
        SELECT s.stimulus, dense_rank() OVER (ORDER BY s.label)::INTEGER AS label_id, s.label,
               coalesce(p.is_correct, false) AS correct
        FROM {stimuli} s LEFT JOIN {correct} p USING (stimulus);
        CREATE OR REPLACE TEMP TABLE ranks (subset VARCHAR, unit INTEGER, label VARCHAR,
                                            rank_sum DOUBLE, tie_term DOUBLE);
    """)
    # Each subset's ranks in a statement of its own: one sort in memory at a time.
    for subset, where in (("all", "true"), ("correct", "l.correct")):
        con.execute(f"""
            INSERT INTO ranks
            WITH ranked_rows AS (
                SELECT a.unit, l.label_id, rank() OVER w AS first, count(*) OVER w AS last
                FROM {acts} a JOIN label_index l USING (stimulus)
                WHERE {where}
                WINDOW w AS (PARTITION BY a.unit ORDER BY a.activation)
            ), sums AS (
                SELECT unit, label_id, sum((first + last) / 2) AS rank_sum,
                       sum((last - first + 1) ** 2 - 1) AS tie_term
                FROM ranked_rows GROUP BY ALL
            )
            SELECT '{subset}', s.unit, l.label, s.rank_sum, s.tie_term
            FROM sums s JOIN (SELECT DISTINCT label_id, label FROM label_index) l
                USING (label_id)""")
    # Each unit's top-k in chunks of units: DuckDB keeps a k-entry state per unit, which for a
    # wide layer (many units, few stimuli) would not fit in a task's memory at once.
    low, high = con.sql(f"SELECT min(unit), max(unit) FROM {acts}").fetchone() or (0, -1)
    step = max(1, TOP_STATES // k)
    con.execute("CREATE OR REPLACE TEMP TABLE tops (unit INTEGER, top_all "
                "STRUCT(activation FLOAT, neg_stimulus INTEGER)[], top_correct "
                "STRUCT(activation FLOAT, neg_stimulus INTEGER)[])")
    for first in range(low or 0, (high if high is not None else -1) + 1, step):
        con.execute(f"""
            INSERT INTO tops
            WITH keyed AS (
                -- Only stimuli of the set, as everywhere else (the join drops the others).
                SELECT a.unit, l.correct AS is_correct,
                       {{'activation': a.activation, 'neg_stimulus': -a.stimulus}} AS key
                FROM {acts} a JOIN label_index l USING (stimulus)
                WHERE a.unit >= {first} AND a.unit < {first + step}
            )
            SELECT unit, max(key, {k}) AS top_all,
                   max(key, {k}) FILTER (WHERE is_correct) AS top_correct
            FROM keyed GROUP BY unit""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE ranked AS
        WITH lists AS (
            SELECT 'all' AS subset, unit, top_all AS top FROM tops
            UNION ALL
            SELECT 'correct', unit, top_correct FROM tops WHERE top_correct IS NOT NULL
        )
        SELECT l.subset, l.unit, u.rank::INTEGER AS rank,
               (-u.entry.neg_stimulus)::INTEGER AS stimulus, s.label,
               u.entry.activation::FLOAT AS activation
        FROM lists l, unnest(l.top) WITH ORDINALITY AS u(entry, rank)
        JOIN {stimuli} s ON s.stimulus = -u.entry.neg_stimulus;
        CREATE OR REPLACE TEMP TABLE units AS
        WITH best AS (
            SELECT subset, unit, label AS top_label, activation AS top_activation
            FROM ranked WHERE rank = 1
        ), per_unit AS (
            SELECT b.subset, b.unit, b.top_label, b.top_activation,
                   sum(c.n)::INTEGER AS n,
                   max(c.max) FILTER (c.label <> b.top_label)::FLOAT AS max_other,
                   any_value(c.n) FILTER (c.label = b.top_label)::INTEGER AS n_top_label
            FROM best b JOIN classes c USING (subset, unit)
            GROUP BY ALL
        )
        SELECT p.*,
               count(*) FILTER (r.label = p.top_label AND (p.max_other IS NULL
                                OR r.activation > p.max_other)) AS listed,
               count(*) AS list_length
        FROM per_unit p JOIN ranked r USING (subset, unit)
        GROUP BY ALL;
    """)
    # The top-class cluster is exact from the top-k list unless the whole list belongs to it
    # and the top label has more stimuli than the list: then count it in a filtered pass.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE counted AS
        WITH need AS (
            SELECT * FROM units WHERE listed = list_length AND list_length < n_top_label
        )
        SELECT n.subset, n.unit, count(*) AS top_cluster
        FROM need n
        JOIN {acts} a ON a.unit = n.unit
        JOIN {stimuli} s ON s.stimulus = a.stimulus
        LEFT JOIN {correct} p ON p.stimulus = a.stimulus
        WHERE s.label = n.top_label AND (n.max_other IS NULL OR a.activation > n.max_other)
          AND (n.subset = 'all' OR coalesce(p.is_correct, false))
        GROUP BY ALL;
    """)
    return {
        "class_stats": """
            SELECT c.subset, c.unit, c.label, c.n, c.mean, c.m2, c.min, c.max, r.rank_sum
            FROM classes c JOIN ranks r USING (subset, unit, label)
        """,
        "unit_top": "SELECT subset, unit, rank, stimulus, label, activation FROM ranked",
        "unit_summaries": """
            SELECT u.subset, u.unit, u.n, u.top_label, u.top_activation, u.max_other,
                   u.n_top_label, coalesce(c.top_cluster, u.listed)::INTEGER AS top_cluster,
                   t.tie_term
            FROM units u LEFT JOIN counted c USING (subset, unit)
            JOIN (SELECT subset, unit, sum(tie_term) AS tie_term FROM ranks GROUP BY ALL) t
                USING (subset, unit)
        """,
    }
