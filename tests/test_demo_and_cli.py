"""The demo end to end, the DuckDB CLI over it, and the CLI's own contracts."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import unitsel
from ingest.demos.demo import LAYERS, build_models
from unitsel.adapters.torch_model import weights_sha256
from unitsel.cli import cli, duckdb_command

from .conftest import REPO

QUERY = "SELECT layer, pool, count(*) AS n FROM activations GROUP BY ALL ORDER BY ALL"


def test_demo_fills_every_table(demo_root: Path) -> None:
    with unitsel.connection(demo_root) as con:
        models = con.sql("SELECT model_id, state, length(weights_sha256) FROM models "
                         "WHERE model_id != 'demo-cnn-planted' ORDER BY 1").fetchall()
        accuracy = dict(con.sql("SELECT model_id, avg(is_correct::INT) FROM predictions "
                                "GROUP BY 1").fetchall())
        per_layer = con.sql("SELECT model_id, layer, pool, count(*) AS n, "
                            "count(DISTINCT stimulus) AS s FROM activations "
                            "WHERE stimulus_set = 'digits' GROUP BY ALL").pl()
        n_units = dict(con.sql("SELECT layer || '/' || pool, n_units FROM layers "
                               "WHERE model_id = 'demo-cnn-trained'").fetchall())
    assert models == [("demo-cnn-trained", "trained", 64), ("demo-cnn-untrained", "untrained", 64)]
    assert accuracy["demo-cnn-trained"] > 0.9 and accuracy["demo-cnn-untrained"] < 0.3
    assert set(per_layer["s"]) == {1797}
    assert set(per_layer["layer"]) == set(LAYERS)
    # Conv layers at every pool; each partition holds n_units x stimuli rows.
    assert n_units["features.0/none"] == 8 * 16 * 16 and n_units["features.4/l2"] == 16
    for row in per_layer.filter(per_layer["model_id"] == "demo-cnn-trained").iter_rows(named=True):
        assert row["n"] == n_units[f"{row['layer']}/{row['pool']}"] * 1797


SEMANTIC_TABLES = ("concepts", "semantic_distances", "ams", "ams_activations",
                   "unit_distances", "mantel_results", "unit_outliers", "unit_atlas")


def test_demo_fills_the_semantic_tables(demo_root: Path) -> None:
    digits = "WHERE model_id IS NULL OR model_id != 'demo-cnn-planted'"
    with unitsel.connection(demo_root) as con:
        counts = {t: con.sql(  # concepts and semantic_distances have no model_id
            f"SELECT count(*) FROM {t} {digits if t.startswith(('a', 'u', 'm')) else ''}"
        ).fetchone()[0] for t in SEMANTIC_TABLES}  # type: ignore[index]
        measures = con.sql("SELECT DISTINCT measure, stimulus_set FROM unit_distances "
                           f"{digits} ORDER BY ALL").fetchall()
        auc = con.sql("SELECT measure, detector, auc, n_outliers FROM outlier_auc").pl()
        mantel = con.sql("SELECT baseline, count(r) FROM mantel_results GROUP BY ALL "
                         "ORDER BY ALL").fetchall()
    # 2 models x 10 logits: 45 pairs x 7 measures; 4 baselines x 45 concept pairs.
    assert counts["unit_distances"] == 2 * 7 * 45 and counts["semantic_distances"] == 4 * 45
    assert counts["concepts"] == 10 and counts["unit_atlas"] == 2 * 10
    assert counts["ams"] == 2 * (10 * 30 + 10 * 3)  # n-AMS n = 30, s-AMS n = 3
    assert counts["ams_activations"] == 2 * 2 * 100 and counts["unit_outliers"] == 2 * 5 * 10
    assert counts["mantel_results"] == 2 * 7 * 4
    assert [m for m, s in measures if s == "synthetic"] == ["ea_s_layerwise", "ea_s_pairwise"]
    # The digits are WordNet siblings: the taxonomy baselines are constant, r is NULL.
    assert mantel == [("glove-6b-50d", 14), ("lch", 0), ("path", 0), ("wup", 0)]
    # DORA Table 3 in miniature: the face logits planted among the digit logits.
    assert auc.height == 3 * 5 and set(auc["n_outliers"]) == {2}
    assert auc["auc"].is_between(0, 1).all()


def test_demo_is_deterministic_and_rerun_replaces(demo_root: Path, tmp_path: Path) -> None:
    rebuilt = build_models(tmp_path)
    with unitsel.connection(demo_root) as con:
        stored = dict(con.sql("SELECT model_id, weights_sha256 FROM models "
                              "WHERE model_id != 'demo-cnn-planted'").fetchall())
    assert {f"demo-cnn-{s}": weights_sha256(m) for s, (m, _) in rebuilt.items()} == stored


def test_duckdb_cli_answers_over_the_demo_in_both_forms(demo_root: Path, tmp_path: Path) -> None:
    duckdb = str(Path(sys.executable).with_name("duckdb"))
    other = subprocess.run(
        [duckdb, "-csv", "-cmd", f"SET VARIABLE wh_root='{demo_root}'", "-cmd",
         ".read sql/init.sql", "-c", QUERY],
        cwd=REPO, capture_output=True, text=True, check=True).stdout
    (tmp_path / "sql").symlink_to(REPO / "sql")
    (tmp_path / "warehouse").symlink_to(demo_root)
    default = subprocess.run([duckdb, "-csv", "-init", "sql/init.sql", "-c", QUERY],
                             cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert other.splitlines()[0] == "layer,pool,n"
    assert default.endswith(other)
    with unitsel.connection(demo_root) as con:
        expected = con.sql(QUERY).fetchall()
    assert [tuple(line.split(",")) for line in other.splitlines()[1:]] == [
        (layer, pool, str(n)) for layer, pool, n in expected]


def test_printed_duckdb_command_runs(demo_root: Path) -> None:
    command = duckdb_command(demo_root) + " -csv -c " + shlex.quote("SELECT count(*) FROM models")
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["count_star()", "3"]


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    ctx = click.Context(group)
    names = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        names.append(f"{prefix}{name}")
        if isinstance(command, click.Group):
            names += _commands(command, f"{prefix}{name} ")
    return names


@pytest.mark.parametrize("command", _commands(cli))
def test_every_command_has_help_root_and_readme_entry(command: str) -> None:
    result = CliRunner().invoke(cli, [*command.split(), "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    readme = (REPO / "README.md").read_text()
    assert re.search(rf"`unitsel {re.escape(command)}\b", readme), f"README lacks {command}"
    ctx = click.Context(cli)
    leaf = cli.get_command(ctx, command.split()[0])
    for part in command.split()[1:]:
        assert isinstance(leaf, click.Group)
        leaf = leaf.get_command(ctx, part)
    if not isinstance(leaf, click.Group) and command not in ("tables", "wordnet"):
        assert "--root" in result.output


def test_query_command_prints_csv(demo_root: Path) -> None:
    result = CliRunner().invoke(cli, ["query", "--csv", "--root", str(demo_root),
                                      "SELECT count(*) AS n FROM stimuli "
                                      "WHERE stimulus_set = 'digits'"])
    assert result.exit_code == 0 and result.output.split() == ["n", "1797"]


def test_the_demo_ends_by_naming_the_cli_and_the_dashboard(demo_root: Path) -> None:
    from ingest.demos.demo import closing_lines

    lines = closing_lines(demo_root)
    assert "duckdb" in lines[1] and str(demo_root.resolve()) in lines[1]
    assert lines[-1].split()[1:] == ["dashboard", "--root", str(demo_root.resolve())]
    assert Path(lines[-1].split()[0]).name == "unitsel"


def test_models_listing_is_readable_and_json_is_complete(demo_root: Path) -> None:
    import json

    records = [json.loads(line) for line in CliRunner().invoke(
        cli, ["models", "--json", "--root", str(demo_root)]).output.splitlines()]
    assert {r["model_id"] for r in records} >= {"demo-cnn-trained", "demo-cnn-untrained"}
    table = CliRunner().invoke(cli, ["models", "--root", str(demo_root)]).output
    for record in records:
        assert len(record["weights_sha256"]) == 64
        row = next(line for line in table.splitlines() if f" {record['model_id']} " in line)
        assert record["weights_sha256"][:12] in row and record["weights_sha256"] not in row
    assert max(len(line) for line in table.splitlines()) <= 200
