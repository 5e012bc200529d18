"""`unitsel export-study`, `unitsel dashboard` and the people analyses of `unitsel analyse`
(Gale's Table 1, interactive-naming agreement); registered on the CLI by entry points."""

from __future__ import annotations

from pathlib import Path

import click

from unitsel.options import NAME, job, root_option, settings


@click.command("ratings")
@click.option("--study-id", type=NAME, required=True)
@click.option("--stimulus-set", type=NAME, required=True,
              help="Set the units' top / CCMAS classes are on.")
@click.option("--concept-set", type=NAME, required=True, help="Maps those class labels to WordNet.")
@click.option("--match-rule", type=click.Choice(["wordnet", "exact"]), default="wordnet",
              show_default=True)
@root_option
def ratings(study_id: str, stimulus_set: str, concept_set: str, match_rule: str,
            root: Path) -> None:
    """Gale et al.'s Table 1 per layer from a ratings study -> rating_summary."""
    from unitsel.analyses.ratings import run_rating_summary

    with job(root) as tx:
        result = run_rating_summary(tx, study_id, stimulus_set, concept_set, match_rule)
    click.echo(result.drop("study_id", "match_rule"))


@click.command("agreement")
@click.option("--study-id", type=NAME, required=True)
@root_option
def agreement(study_id: str, root: Path) -> None:
    """Coverage, purity, Jaccard, D = 1 / D = 2 agreement of an annotation study."""
    from unitsel.analyses.agreement import run_agreement

    with job(root) as tx:
        tables = run_agreement(tx, study_id)
    click.echo(tables["annotation_agreement"].drop("study_id"))


@click.command("export-study")
@click.option("--study-id", type=NAME, required=True)
@click.option("--model-id", type=NAME, required=True)
@click.option("--layer", type=NAME, required=True)
@click.option("--pool", default="none", show_default=True)
@click.option("--units", default=None, callback=lambda ctx, param, value: _units(value, param),
              help="Comma-separated units; default every unit.")
@click.option("--source", type=click.Choice(["ams", "top"]), default="ams", show_default=True,
              help="Panels of activation-maximisation signals or of top stimuli.")
@click.option("--stimulus-set", type=NAME, default=None, help="For --source top.")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The stimulus set's image folder; default <root>/images/<set>.")
@click.option("--lists", default=4, show_default=True, help="Counterbalanced lists.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@root_option
def export_study_command(study_id: str, model_id: str, layer: str, pool: str,
                         units: list[int] | None, source: str, stimulus_set: str | None,
                         images: Path | None, lists: int, seed: int, out: Path,
                         root: Path) -> None:
    """Write a rating study package: 10 x 10 panels per unit and a manifest CSV."""
    from unitsel.study import export_study

    with job(root) as tx:
        if units is None:
            with tx.sql() as con:
                found = con.execute("SELECT n_units FROM layers WHERE model_id = $1 AND "
                                    "layer = $2 AND pool = $3", [model_id, layer, pool]).fetchone()
            if found is None:
                raise click.ClickException(f"no layer {layer} {pool} of {model_id}")
            units = list(range(int(found[0])))
        manifest = export_study(tx, study_id, [(model_id, layer, pool, u) for u in units], out,
                                source, stimulus_set, images, lists, seed)
    click.echo(f"wrote {manifest.height} panels and {out / 'manifest.csv'}")


def _units(value: str | None, param: click.Parameter) -> list[int] | None:
    if value is None:
        return None
    parts = [part.strip() for part in value.split(",") if part.strip()]
    bad = [part for part in parts if not part.isdigit()]
    if bad or not parts:
        raise click.BadParameter(f"{(bad or [value])[0]!r} is not a unit number (0, 1, …); "
                                 "give them comma-separated", param=param)
    return [int(part) for part in parts]


def dashboards_home() -> Path:
    """The folder holding the Streamlit app: in the package when installed from a wheel, else
    the repository's `dashboards/`."""
    here = Path(__file__).resolve().parent
    for home in (here / "dashboards", here.parents[1] / "dashboards"):
        if (home / "app.py").is_file():
            return home
    raise FileNotFoundError(f"dashboards/app.py not found beside {here}")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command()
@click.option("--port", default=8501, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The dashboards have no authentication: another "
                   "address (0.0.0.0: every interface) lets anyone who reaches the port read "
                   "the warehouse.")
@click.option("--headless/--browser", default=True, show_default=True,
              help="Headless: only serve; --browser also opens a browser tab.")
@root_option
def dashboard(port: int, host: str, headless: bool, root: Path) -> None:
    """Serve the Streamlit dashboards over a warehouse (Ctrl-C or SIGTERM stops the server)."""
    import os
    import signal
    import subprocess
    import sys

    from unitsel import lake

    root = root.resolve()
    catalog = settings().catalog
    lake.init(root, catalog)  # a warehouse, or a clear error (readers never create one)
    environment = os.environ | {"UNITSEL_ROOT": str(root)} | (
        {"UNITSEL_CATALOG": catalog} if catalog else {})
    if host not in LOOPBACK:
        click.echo(f"warning: listening on {host}: anyone who can reach port {port} there can "
                   "read this warehouse (the dashboards have no authentication)", err=True)
    click.echo(f"unitsel dashboard on http://{'localhost' if host in LOOPBACK else host}:{port}")
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run",
                               str(dashboards_home() / "app.py"), "--server.port", str(port),
                               "--server.address", host,
                               "--server.headless", str(headless).lower(),
                               "--browser.gatherUsageStats", "false"], env=environment)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # run the clean-up below

    signal.signal(signal.SIGTERM, stop)
    try:
        server.wait()
    finally:  # the server never outlives the command
        server.terminate()
        server.wait(timeout=30)
