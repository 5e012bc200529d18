"""The `unitsel` command: thin, each command parses options and calls one library function.

Commands from content (ingest jobs, the demo) plug in through the `unitsel.commands` entry
point group, so this module never imports them.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
from pathlib import Path

import click

from unitsel.options import (
    NAME,
    Group,
    Settings,
    job,
    root_option,
    scheduler_option,
    settings,
    snapshot_option,
)


def _use_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    ctx.ensure_object(Settings).debug = value


def _use_catalog(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    ctx.ensure_object(Settings).catalog = value


def _use_data(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    ctx.ensure_object(Settings).data = value


def _use_endpoint(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:  # where every engine of this process (and a local cluster's workers) looks
        os.environ["AWS_ENDPOINT_URL_S3"] = value


@click.group(cls=Group, plugins="unitsel.commands")
@click.version_option(package_name="unitsel")
@click.option("--debug", is_flag=True, expose_value=False, callback=_use_debug, is_eager=True,
              help="Show the full traceback of an error instead of one line.")
@click.option("--catalog", expose_value=False, callback=_use_catalog,
              help="DuckLake catalog: 'postgres:<libpq string>' for many machines over a "
                   "shared root (or $UNITSEL_CATALOG); default the root's own catalog.sqlite. "
                   "A root remembers it.")
@click.option("--data", expose_value=False, callback=_use_data,
              help="Where a new warehouse keeps its files (data/, images/): a folder or an "
                   "S3-compatible bucket, s3://bucket/prefix (or $UNITSEL_DATA); default the "
                   "root. Keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. A root "
                   "remembers it.")
@click.option("--endpoint", expose_value=False, callback=_use_endpoint,
              help="The URL of an S3-compatible server other than Amazon's (MinIO, Ceph); or "
                   "$AWS_ENDPOINT_URL.")
def cli() -> None:
    """unitsel: a unit-selectivity warehouse (a DuckLake of Parquet files + DuckDB SQL)."""


@cli.command()
@root_option
def init(root: Path) -> None:
    """Create an empty warehouse whose views all bind."""
    from unitsel.warehouse import init as init_warehouse

    ready = init_warehouse(root, settings().catalog, settings().data)
    click.echo(f"warehouse ready at {ready.resolve()}")


@cli.command()
@click.argument("sql")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
@snapshot_option
@root_option
def query(sql: str, as_csv: bool, snapshot: int | None, root: Path) -> None:
    """Run SQL over the warehouse (all views and macros loaded) and print its result.

    Any statement runs, as in the DuckDB CLI: it is your own database, so a DELETE or DROP on
    `lake.*` tables changes it (a pinned --snapshot is read-only). A statement without a
    result (SET, CREATE, COPY …) prints what it did."""
    _print_query(sql, as_csv, root, snapshot)


def _print_query(sql: str, as_csv: bool, root: Path, snapshot: int | None = None) -> None:
    from unitsel.warehouse import connection

    with connection(root, snapshot=snapshot, catalog=settings().catalog,
                    create=False) as con:
        relation = con.sql(sql)
        if relation is None:
            click.echo(f"ok: {sql.strip().split()[0].upper() if sql.strip() else 'nothing'} "
                       "ran (no result to print)")
            return
        frame = relation.pl()
    if as_csv:
        click.echo(frame.write_csv(), nl=False)
    else:
        import polars as pl

        # Wide enough for ids and hashes not to wrap into narrow columns; no dtype row.
        with pl.Config(tbl_rows=50, tbl_cols=20, fmt_str_lengths=60, tbl_width_chars=200,
                       tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True):
            click.echo(frame)


@cli.command()
@click.option("--json", "as_json", is_flag=True,
              help="Every field in full, one JSON record per model.")
@root_option
def models(as_json: bool, root: Path) -> None:
    """List the models: state, architecture, a short weights hash, the input size, the
    weights file and how many layer x pool partitions each has (--json: every field)."""
    if as_json:
        from unitsel.warehouse import connection

        with connection(root, catalog=settings().catalog, create=False) as con:
            frame = con.sql("SELECT * FROM models ORDER BY model_id").pl()
        for record in frame.iter_rows(named=True):
            click.echo(json.dumps(record))
        return
    _print_query("""
        SELECT m.model_id, m.state, m.architecture,
               left(m.weights_sha256, 12) AS sha256,
               json_extract_string(m.preprocessing, '$.image_size') AS input_px,
               regexp_extract(m.source, '[^/]*$') AS source,
               count(l.layer) AS layer_pools
        FROM models m LEFT JOIN layers l USING (model_id)
        GROUP BY ALL ORDER BY model_id""", False, root)


@cli.command()
@click.option("--model-id", type=NAME, default=None, help="Only this model.")
@root_option
def layers(model_id: str | None, root: Path) -> None:
    """List the recorded layers and pools of every model (or one)."""
    where = "" if model_id is None else "WHERE model_id = '" + model_id.replace("'", "''") + "'"
    _print_query(
        f"SELECT model_id, layer, pool, kind, n_units, shape FROM layers {where} "
        "ORDER BY model_id, position NULLS LAST, layer, pool", False, root)


@cli.command()
def tables() -> None:
    """List the warehouse tables, their partition keys and what a row is."""
    from unitsel.schema import TABLES

    for t in TABLES.values():
        click.echo(f"{t.name}  (partitioned by {', '.join(t.partition_by)})\n  {t.doc}")
        for c in t.columns:
            click.echo(f"    {c.name:<16} {c.duckdb_type:<10} {c.doc}")


@cli.group()
def metrics() -> None:
    """Export metric tables for people who do not use SQL."""


@metrics.command("selectivity")
@click.option("--model-id", type=NAME, required=True)
@click.option("--stimulus-set", type=NAME, required=True)
@click.option("--layer", type=NAME, default=None, help="One layer; default every layer.")
@click.option("--pool", default="none", show_default=True)
@click.option("--correct-only", is_flag=True, help="Only correctly classified stimuli (Gale).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file: .csv or .parquet.")
@root_option
def selectivity(model_id: str, stimulus_set: str, layer: str | None, pool: str,
                correct_only: bool, out: Path, root: Path) -> None:
    """Write every unit's class selectivity (Gale et al. 2019) to a CSV or Parquet file."""
    from unitsel.exports import export_selectivity

    with job(root, create=False) as tx:
        rows = export_selectivity(tx, out, model_id=model_id, stimulus_set=stimulus_set,
                                  layer=layer, pool=pool, correct_only=correct_only)
    click.echo(f"wrote {rows:,} units to {out}")


@metrics.command("category")
@click.option("--model-id", type=NAME, required=True)
@click.option("--stimulus-set", type=NAME, required=True)
@click.option("--category", default="face", show_default=True, help="Target label.")
@click.option("--layer", type=NAME, default=None, help="One layer; default every layer.")
@click.option("--pool", default=None, help="One pool; default every pool.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file: .csv or .parquet.")
@root_option
def category(model_id: str, stimulus_set: str, category: str, layer: str | None,
             pool: str | None, out: Path, root: Path) -> None:
    """Write every unit's category selectivity (FSI, d', rank-sum, t-tests) to a file."""
    from unitsel.exports import export_category

    with job(root, create=False) as tx:
        rows = export_category(tx, out, model_id=model_id, stimulus_set=stimulus_set,
                               category=category, layer=layer, pool=pool)
    click.echo(f"wrote {rows:,} units to {out}")


@cli.group(cls=Group, plugins="unitsel.analyse")
@scheduler_option
def analyse() -> None:
    """Analyses over the warehouse that write result tables back."""


@analyse.command("consistency")
@click.option("--model-id", type=NAME, required=True)
@click.option("--stimulus-set", type=NAME, required=True, help="Set the metrics are computed on.")
@click.option("--category", default="face", show_default=True, help="Target label.")
@root_option
def consistency(model_id: str, stimulus_set: str, category: str, root: Path) -> None:
    """Spearman agreement of the category metrics (and lesions) per layer -> metric_consistency."""
    from unitsel.analyses.consistency import run_consistency

    with job(root) as tx:
        result = run_consistency(tx, model_id, stimulus_set, category)
    click.echo(f"metric_consistency: {result.height} metric pairs over "
               f"{result.select('layer', 'pool').n_unique()} layer/pool partitions")


@analyse.command("decoding")
@click.option("--model-id", type=NAME, required=True)
@click.option("--stimulus-set", type=NAME, required=True, help="Set the units are selected on.")
@click.option("--category", default="face", show_default=True, help="Target label.")
@click.option("--layer", type=NAME, required=True)
@click.option("--pool", default="l2", show_default=True)
@click.option("--decode-set", default=None, help="Set whose labels are decoded; default the same.")
@click.option("--n-units", type=int, default=None,
              help="Units per metric; default the fewest any metric selects.")
@click.option("--folds", default=10, show_default=True, type=click.IntRange(min=2),
              help="k of the k-fold scheme (at least 2).")
@click.option("--seed", default=0, show_default=True)
@root_option
def decoding(model_id: str, stimulus_set: str, category: str, layer: str, pool: str,
             decode_set: str | None, n_units: int | None, folds: int, seed: int,
             root: Path) -> None:
    """Linear-SVM decoding from each metric's top units -> decoding."""
    from unitsel.analyses.decoding import run_decoding

    with job(root) as tx:
        result = run_decoding(tx, model_id, stimulus_set, category, layer, pool,
                              decode_set=decode_set, n_units=n_units, folds=folds, seed=seed)
    click.echo(result.select("metric", "cv", "n_units", "accuracy", "ci_low", "ci_high",
                             "chance"))


@cli.command()
@click.option("--rebuild", is_flag=True, help="Rebuild every summary, not only outdated ones.")
@scheduler_option
@root_option
def summarise(rebuild: bool, root: Path) -> None:
    """Build the summaries an older unitsel left outdated or missing (jobs keep the others
    current in their own commit)."""
    with job(root) as tx:
        count = tx.rebuild_summaries(every=rebuild)
    click.echo(f"rebuilt the summaries of {count} partitions")


@cli.command()
@root_option
def migrate(root: Path) -> None:
    """Convert a warehouse of the old layout (a Parquet file per partition) to DuckLake."""
    from unitsel.migrate import migrate as migrate_root

    rows = migrate_root(root, settings().catalog)
    click.echo(f"migrated {sum(rows.values()):,} rows of {len(rows)} tables into {root}")


def _age(value: float | None, param: click.Parameter) -> float | None:
    # NaN, infinities and negative ages would mean "everything" or crash deep in DuckDB.
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise click.BadParameter(f"{value} is not an age: give a finite number >= 0",
                                 param=param)
    return value


@cli.command()
@click.option("--orphans-older-than", "orphan_hours", default=24.0, show_default=True,
              callback=lambda ctx, param, value: _age(value, param),
              help="Hours after which a data file no snapshot lists (a killed job's) goes.")
@click.option("--expire-older-than", "expire_days", type=float, default=None,
              callback=lambda ctx, param, value: _age(value, param),
              help="Days after which snapshots are forgotten and the files only they used "
                   "deleted; default keep every snapshot (time travel).")
@root_option
def clean(orphan_hours: float, expire_days: float | None, root: Path) -> None:
    """Reclaim disk: DuckLake's clean-up of orphaned and replaced data files."""
    from unitsel.lake import clean as clean_lake

    done = clean_lake(root, settings().catalog, orphan_age_hours=orphan_hours,
                      expire_days=expire_days)
    click.echo(", ".join(f"{n:,} {what.replace('_', ' ')}" for what, n in done.items()))


@cli.command()
@root_option
def check(root: Path) -> None:
    """Verify the warehouse: the catalog, every data file it lists (there, with its rows),
    orphaned files, and summaries that agree with their activations. Exit 1 on damage."""
    from unitsel.integrity import check as check_warehouse

    report = check_warehouse(root, settings().catalog)
    for note in report.notes:
        click.echo(f"note: {note}")
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    click.echo(f"checked {report.files:,} data files ({report.rows:,} rows): "
               + (f"{len(report.problems)} problems" if report.problems else "no problems"))
    if report.problems:
        raise SystemExit(1)


def _partition(ctx: click.Context, param: click.Parameter,
               values: tuple[str, ...]) -> dict[str, str]:
    pairs = [value.partition("=") for value in values]
    bad = [value for value, (_, sep, _) in zip(values, pairs, strict=True) if not sep]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not KEY=VALUE", param=param)
    return {key: value for key, _, value in pairs}


@cli.command()
@click.argument("table")
@click.argument("partition", nargs=-1, required=True, callback=_partition)
@root_option
def drop(table: str, partition: dict[str, str], root: Path) -> None:
    """Delete the partitions of TABLE whose keys have the values given as KEY=VALUE (e.g.
    `unitsel drop activations model_id=m layer=fc`), with their summaries, in one snapshot:
    how to repair a partition whose data file is gone. Earlier snapshots keep them."""
    from unitsel.schema import TABLES

    if table not in TABLES:
        raise click.BadParameter(f"no table {table!r}; `unitsel tables` lists them",
                                 param_hint="TABLE")
    with job(root, create=False) as tx:
        dropped = tx.drop(table, partition)
        if not dropped:
            raise click.ClickException(f"no partition of {table} has "
                                       + ", ".join(f"{k}={v}" for k, v in partition.items()))
    click.echo(f"dropped {len(dropped)} partitions of {table}: "
               + "; ".join("/".join(key) for key in dropped[:10])
               + (" …" if len(dropped) > 10 else ""))


@cli.command()
@click.option("--limit", default=20, show_default=True)
@root_option
def snapshots(limit: int, root: Path) -> None:
    """List the newest snapshots: id, time and the job that committed each."""
    _print_query("SELECT snapshot_id, snapshot_time, commit_message FROM lake.snapshots() "
                 f"ORDER BY snapshot_id DESC LIMIT {int(limit)}", False, root)


def _double_quoted(text: str) -> str:
    # Double quotes keep the SQL's single quotes readable in the printed command.
    return '"' + "".join("\\" + ch if ch in '"$`\\' else ch for ch in text) + '"'


def duckdb_command(root: Path, snapshot: int | None = None, catalog: str | None = None) -> str:
    """The shell command that opens `root` in the DuckDB CLI with every view and macro (at
    `snapshot`: the lake attached read-only at that snapshot before init.sql runs)."""
    from unitsel import lake, storage
    from unitsel.sqlfiles import sql_home, sql_string

    root = Path(root).resolve()
    catalog = lake.init(root, catalog)
    statements = [f"SET VARIABLE wh_root={sql_string(str(root))}",
                  f"SET VARIABLE wh_catalog={sql_string(catalog)}",
                  f"SET VARIABLE wh_data={sql_string(lake.data_path(root))}"]
    endpoint = storage.endpoint()
    if endpoint:
        statements.append(f"SET VARIABLE wh_s3_endpoint={sql_string(endpoint)}")
    if snapshot is not None:
        lake.require_snapshot(root, catalog, snapshot)
        statements += [lake.load_sql(), lake.attach_sql(root, catalog, snapshot=snapshot)]
    duckdb = Path(sys.executable).with_name("duckdb")
    return (f"cd {shlex.quote(str(sql_home()))} && {shlex.quote(str(duckdb))} "
            + " ".join(f"-cmd {_double_quoted(s)}" for s in [*statements, ".read sql/init.sql"]))


@cli.command()
@snapshot_option
@root_option
def sql(snapshot: int | None, root: Path) -> None:
    """Print the command that opens this warehouse in the DuckDB CLI."""
    click.echo(duckdb_command(root, snapshot, settings().catalog))


def main() -> None:
    cli()
