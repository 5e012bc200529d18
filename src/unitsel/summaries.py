"""Per-partition summaries of raw activations, so metric macros never re-scan them.

For every activations partition (model, stimulus set, layer, pool) and subset (`all`
stimuli, or `correct`ly classified ones when predictions exist), one pass of DuckDB over the
partition's file writes:

- `class_stats`: per unit and label the count, mean, M2 (sum of squared deviations), min, max
  and the sum of the label's mid-ranks among the unit's activations (for rank-sum tests);
- `unit_top`: per unit its top-k stimuli (activation descending, ties by stimulus ascending);
- `unit_summaries`: per unit the top label, the best activation of every other label, the
  top-class cluster size (the top label's stimuli strictly above all others) and the tie term
  sum(t^3 - t) over groups of equal activations;
- `summary_builds`: the fingerprint of the input files the summaries were built from.

A summary is stale when the fingerprint of its inputs (the activations file, the stimulus set,
the predictions) changed; `refresh(root)` rebuilds exactly the stale ones and runs after every
write, so summaries follow their partitions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import polars as pl
from tqdm import tqdm

from unitsel.schema import ACTIVATIONS, PREDICTIONS, STIMULI
from unitsel.warehouse import DATA_FILE, EMPTY_PARTITION, Transaction, partition_dir, scan

if TYPE_CHECKING:
    import duckdb

TOP_K = 100
# Bump when the summaries' content changes: every existing summary then counts as stale.
LAYOUT_VERSION = 2
Partition = dict[str, str]


def activation_partitions(root: Path) -> Iterator[Partition]:
    """Every written activations partition, its keys decoded."""
    base = Path(root) / ACTIVATIONS.name
    depth = "/".join("*" for _ in ACTIVATIONS.partition_by)
    for path in sorted(base.glob(f"{depth}/{DATA_FILE}")):
        values = [unquote(part.split("=", 1)[1]) for part in path.relative_to(base).parts[:-1]]
        if EMPTY_PARTITION not in values:
            yield dict(zip(ACTIVATIONS.partition_by, values, strict=True))


def _inputs(root: Path, part: Partition) -> tuple[Path, Path, Path]:
    return (
        partition_dir(root, ACTIVATIONS, part) / DATA_FILE,
        partition_dir(root, STIMULI, part) / DATA_FILE,
        partition_dir(root, PREDICTIONS, part) / DATA_FILE,
    )


def fingerprint(root: Path, part: Partition, k: int = TOP_K) -> str:
    """Size and mtime of each input file (absent ones count as absent), k and the layout."""
    digest = hashlib.sha256(f"k={k}|layout={LAYOUT_VERSION}".encode())
    for path in _inputs(root, part):
        stat = path.stat() if path.exists() else None
        digest.update(f"|{path.name}:{stat and (stat.st_size, stat.st_mtime_ns)}".encode())
    return digest.hexdigest()


def stale_partitions(root: Path, k: int = TOP_K) -> list[Partition]:
    built: dict[tuple[str, ...], str] = {}
    builds_dir = Path(root) / "summary_builds"
    if builds_dir.exists():
        for row in scan("summary_builds", root).collect().iter_rows(named=True):
            built[tuple(row[key] for key in ACTIVATIONS.partition_by)] = row["fingerprint"]
    return [p for p in activation_partitions(root)
            if built.get(tuple(p.values())) != fingerprint(root, p, k)]


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def build(root: Path, parts: list[Partition], k: int = TOP_K) -> None:
    """Rebuild the summaries of `parts` and write them atomically, all in one transaction."""
    import duckdb

    root = Path(root)
    con = duckdb.connect()
    with Transaction(root, refresh=False) as tx:
        for part in tqdm(parts, desc="summaries", unit="partition", disable=len(parts) < 4):
            acts, stimuli, predictions = _inputs(root, part)
            if not stimuli.exists():
                continue  # activations without their stimulus set: nothing to summarise
            correct = (f"(SELECT stimulus, is_correct FROM read_parquet({_sql_path(predictions)}))"
                       if predictions.exists() else
                       "(SELECT NULL::INTEGER AS stimulus, NULL::BOOLEAN AS is_correct LIMIT 0)")
            frames = _summarise(con, _sql_path(acts), _sql_path(stimuli), correct, k)
            for table, frame in frames.items():
                tx.write(frame.with_columns(**{key: pl.lit(v) for key, v in part.items()}),
                         table)
            tx.write(pl.DataFrame({**{key: [v] for key, v in part.items()}, "k": [k],
                                   "fingerprint": [fingerprint(root, part, k)]}),
                     "summary_builds")
    con.close()


def refresh(root: Path, k: int = TOP_K) -> int:
    """Rebuild every stale summary; returns how many partitions were rebuilt."""
    stale = stale_partitions(root, k)
    if stale:
        build(root, stale, k)
    return len(stale)


def _summarise(con: duckdb.DuckDBPyConnection, acts: str, stimuli: str, correct: str,
               k: int) -> dict[str, pl.DataFrame]:
    # Three passes over the raw file: moments per (unit, label, correctness), merged per subset
    # with Chan et al.'s pairwise update for M2; mid-ranks per unit and subset; and each unit's
    # top-k for both subsets.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fine AS
        SELECT a.unit, s.label, coalesce(p.is_correct, false) AS correct,
               count(*) AS n, avg(a.activation) AS mean,
               var_pop(a.activation) * count(*) AS m2,
               min(a.activation) AS min, max(a.activation) AS max
        FROM read_parquet({acts}) a
        JOIN read_parquet({stimuli}) s USING (stimulus)
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
        FROM read_parquet({stimuli}) s LEFT JOIN {correct} p USING (stimulus);
        CREATE OR REPLACE TEMP TABLE ranks AS
        WITH ranked_rows AS (
            SELECT 'all' AS subset, a.unit, l.label_id,
                   rank() OVER by_all AS first, count(*) OVER by_all AS last
            FROM read_parquet({acts}) a JOIN label_index l USING (stimulus)
            WINDOW by_all AS (PARTITION BY a.unit ORDER BY a.activation)
            UNION ALL
            SELECT 'correct', a.unit, l.label_id, rank() OVER by_correct, count(*) OVER by_correct
            FROM read_parquet({acts}) a JOIN label_index l USING (stimulus)
            WHERE l.correct
            WINDOW by_correct AS (PARTITION BY a.unit ORDER BY a.activation)
        ), sums AS (
            SELECT subset, unit, label_id, sum((first + last) / 2) AS rank_sum,
                   sum((last - first + 1) ** 2 - 1) AS tie_term
            FROM ranked_rows GROUP BY ALL
        )
        SELECT s.subset, s.unit, l.label, s.rank_sum, s.tie_term
        FROM sums s JOIN (SELECT DISTINCT label_id, label FROM label_index) l USING (label_id);
        CREATE OR REPLACE TEMP TABLE tops AS
        WITH keyed AS (
            SELECT a.unit, p.is_correct,
                   {{'activation': a.activation, 'neg_stimulus': -a.stimulus}} AS key
            FROM read_parquet({acts}) a LEFT JOIN {correct} p USING (stimulus)
        )
        SELECT unit, max(key, {k}) AS top_all,
               max(key, {k}) FILTER (WHERE is_correct) AS top_correct
        FROM keyed GROUP BY unit;
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
        JOIN read_parquet({stimuli}) s ON s.stimulus = -u.entry.neg_stimulus;
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
        JOIN read_parquet({acts}) a ON a.unit = n.unit
        JOIN read_parquet({stimuli}) s ON s.stimulus = a.stimulus
        LEFT JOIN {correct} p ON p.stimulus = a.stimulus
        WHERE s.label = n.top_label AND (n.max_other IS NULL OR a.activation > n.max_other)
          AND (n.subset = 'all' OR coalesce(p.is_correct, false))
        GROUP BY ALL;
    """)
    return {
        "class_stats": con.sql("""
            SELECT c.subset, c.unit, c.label, c.n, c.mean, c.m2, c.min, c.max, r.rank_sum
            FROM classes c JOIN ranks r USING (subset, unit, label)
        """).pl(),
        "unit_top": con.sql(
            "SELECT subset, unit, rank, stimulus, label, activation FROM ranked").pl(),
        "unit_summaries": con.sql("""
            SELECT u.subset, u.unit, u.n, u.top_label, u.top_activation, u.max_other,
                   u.n_top_label, coalesce(c.top_cluster, u.listed)::INTEGER AS top_cluster,
                   t.tie_term
            FROM units u LEFT JOIN counted c USING (subset, unit)
            JOIN (SELECT subset, unit, sum(tie_term) AS tie_term FROM ranks GROUP BY ALL) t
                USING (subset, unit)
        """).pl(),
    }
