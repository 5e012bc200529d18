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
stimulus set, the predictions), from that commit's own view of the lake, so a snapshot's
summaries always agree with its activations. `refresh` rebuilds those built by an older
layout (or never built: a migrated warehouse).
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from unitsel import lake
from unitsel.schema import ACTIVATIONS, PREDICTIONS, STIMULI, SUMMARY_BUILDS, table

if TYPE_CHECKING:
    import duckdb

    from unitsel.warehouse import Transaction

TOP_K = 100
TASK_MEMORY = "1GB"  # DuckDB's memory limit in one file's summary pass
TOP_STATES = 2_000_000  # top-k entries kept at once (units x k) in a file's pass
# Bump when the summaries' content changes: every existing summary then counts as stale.
LAYOUT_VERSION = 3
Partition = dict[str, str]
_KEYS = ACTIVATIONS.partition_by
_DERIVED = ("class_stats", "unit_top", "unit_summaries", SUMMARY_BUILDS.name)


def _where(part: Partition, keys: tuple[str, ...] = _KEYS) -> str:
    return " AND ".join(f"{k} = {lake.sql_string(part[k])}" for k in keys)


def update(con: duckdb.DuckDBPyConnection, tx: Transaction, k: int = TOP_K) -> None:
    """Inside `tx`'s commit, rebuild the summaries of every activations partition whose
    activations, stimulus set or predictions `tx` writes (and those in `tx.rebuild`)."""
    own: dict[tuple[str, ...], list[str]] = {}
    for staged in tx.staged(ACTIVATIONS):
        own.setdefault(tuple(staged.values.values()), []).append(str(staged.path))
    parts = {tuple(p.values()): p for p in [*tx.written(ACTIVATIONS), *tx.rebuild]}
    sets = {p["stimulus_set"] for p in tx.written(STIMULI)}
    runs = {(p["model_id"], p["stimulus_set"]) for p in tx.written(PREDICTIONS)}
    committed = partition_files(con, tx.root)
    for key in committed:
        part = dict(zip(_KEYS, key, strict=True))
        if part["stimulus_set"] in sets or (part["model_id"], part["stimulus_set"]) in runs:
            parts.setdefault(key, part)
    build(con, tx, [(part, own.get(key) or committed.get(key, []))
                    for key, part in parts.items()], k)


def build(con: duckdb.DuckDBPyConnection, tx: Transaction,
          parts: list[tuple[Partition, list[str]]], k: int = TOP_K) -> None:
    """Replace the summaries of `parts` (each with its activations data files) inside the open
    transaction of `con`: one task per data file, run by `tx.runner()`, whose output files
    this commit registers. A task whose file and labels are those of an earlier attempt of the
    same commit is not run again."""
    planned = []
    for part, paths in parts:
        labels = con.sql(f"""
            SELECT s.stimulus, s.label, p.is_correct
            FROM {lake.ALIAS}.{STIMULI.name} s
            LEFT JOIN (SELECT stimulus, is_correct FROM {lake.ALIAS}.{PREDICTIONS.name}
                       WHERE {_where(part, ('model_id', 'stimulus_set'))}) p USING (stimulus)
            WHERE {_where(part, ('stimulus_set',))}""").pl()
        digest = _digest(labels)
        planned.append((part, [((path, digest, k), labels) for path in paths]))
    threads = tx.runner().threads
    todo = {key: (str(tx.root), part, key[0], labels, k, threads)
            for part, files in planned for key, labels in files
            if key not in tx.summary_files}
    done = tx.runner().map(summarise_file, list(todo.values()), desc="summaries", unit="file")
    tx.summary_files.update(zip(todo, done, strict=True))
    tx.summaries_used = {key for _, files in planned for key, _ in files}
    for part, files in planned:
        for name in _DERIVED:
            con.execute(f"DELETE FROM {lake.ALIAS}.{name} WHERE {_where(part)}")
        for key, _ in files:
            for name, output in tx.summary_files[key]:
                con.execute(f"CALL ducklake_add_data_files('{lake.ALIAS}', ?, ?)",
                            [name, output])
        keys_sql = ", ".join(f"{lake.sql_string(part[key])} AS {key}" for key in _KEYS)
        con.execute(f"INSERT INTO {lake.ALIAS}.{SUMMARY_BUILDS.name} BY NAME "
                    f"SELECT {keys_sql}, {int(k)} AS k, {LAYOUT_VERSION} AS layout")


def _digest(labels: pl.DataFrame) -> str:
    return hashlib.sha256(labels.write_ipc(None).getvalue()).hexdigest()


def summarise_file(root: str, part: Partition, path: str, labels: pl.DataFrame, k: int,
                   threads: int | None = None) -> list[tuple[str, str]]:
    """Summarise one activations data file (some units, all their stimuli) with one DuckDB
    pass, given the partition's labels (stimulus, label, is_correct), and write each summary
    table's rows of those units to a data file of its own; memory is bounded by the file.
    Returns (table, file) pairs. Runs in any process that sees `root` (a Dask worker)."""
    import duckdb

    from unitsel.warehouse import partition_dir

    # DuckDB spills what does not fit under the limit, so a task's memory stays bounded
    # whatever the file holds.
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": TASK_MEMORY, "temp_directory": tempfile.gettempdir(),
        "preserve_insertion_order": False}
    if threads is not None:
        config["threads"] = threads
    con = duckdb.connect(config=config)
    con.register("labels_in", labels)
    # The passes below read the block five times: decode the file once.
    con.execute("CREATE TEMP TABLE acts AS SELECT unit, stimulus, activation FROM "
                f"read_parquet({lake.sql_string(path)})")
    acts = "acts"
    keys_sql = ", ".join(f"{lake.sql_string(part[key])} AS {key}" for key in _KEYS)
    outputs = []
    # A unit has at most one top entry per stimulus: asking DuckDB for more only makes each
    # unit's top-k state larger (wide layers on few stimuli).
    queries = _summarise(con, acts, "(SELECT stimulus, label FROM labels_in)",
                         "(SELECT stimulus, is_correct FROM labels_in)",
                         max(1, min(k, labels.height)))
    for name, query in queries.items():
        folder = partition_dir(Path(root), table(name), part)
        folder.mkdir(parents=True, exist_ok=True)
        output = folder / f"unitsel-{uuid.uuid4().hex}.parquet"
        written = con.execute(f"COPY (SELECT {keys_sql}, * FROM ({query})) TO "
                              f"{lake.sql_string(str(output))} (FORMAT parquet)").fetchone()
        if written and written[0]:
            outputs.append((name, str(output)))
        else:
            output.unlink(missing_ok=True)
    con.close()
    return outputs


def partition_files(con: duckdb.DuckDBPyConnection, root: Path) -> dict[tuple[str, ...],
                                                                        list[str]]:
    """The data files of every committed activations partition, from the catalog's own record
    of each file's partition values (no data file is read)."""
    meta = f"__ducklake_metadata_{lake.ALIAS}"
    pivot = ", ".join(f"max(v.partition_value) FILTER (v.partition_key_index = {i})"
                      for i in range(len(_KEYS)))
    rows = con.sql(f"""
        SELECT {pivot}, any_value(CASE WHEN f.path_is_relative
                                       THEN s.path || t.path || f.path ELSE f.path END)
        FROM {meta}.ducklake_file_partition_value v
        JOIN {meta}.ducklake_data_file f USING (data_file_id)
        JOIN {meta}.ducklake_table t ON t.table_id = f.table_id
        JOIN {meta}.ducklake_schema s ON s.schema_id = t.schema_id
        WHERE t.table_name = '{ACTIVATIONS.name}' AND t.end_snapshot IS NULL
          AND s.end_snapshot IS NULL AND f.end_snapshot IS NULL
        GROUP BY v.data_file_id ORDER BY ALL""").fetchall()
    files: dict[tuple[str, ...], list[str]] = {}
    for *key, path in rows:
        files.setdefault(tuple(key), []).append(str(Path(lake.data_path(root)) / path))
    return files


def refresh(root: Path, *, rebuild: bool = False) -> int:
    """Rebuild the summaries of every activations partition built with another k or layout
    or never built (all of them with `rebuild`), in one commit; returns how many."""
    from unitsel.warehouse import Transaction

    root = Path(root).resolve()
    con = lake.attach(root, lake.init(root))
    try:
        built = {row[:4]: row[4:] for row in con.sql(
            f"SELECT {', '.join(_KEYS)}, k, layout FROM {lake.ALIAS}.{SUMMARY_BUILDS.name}"
        ).fetchall()}
        stale = [dict(zip(_KEYS, key, strict=True)) for key in partition_files(con, root)
                 if rebuild or built.get(key) != (TOP_K, LAYOUT_VERSION)]
    finally:
        con.close()
    if stale:
        with Transaction(root) as tx:
            tx.rebuild = stale
    return len(stale)


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
