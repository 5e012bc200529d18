"""What every command module of the CLI shares: its options, the command groups' class, and
the job handle a command opens with the group-wide settings.

The user's defaults from the environment are read here and only here, by the options
(`$UNITSEL_ROOT`, `$UNITSEL_SCHEDULER`; `$UNITSEL_CATALOG` is read by `unitsel.lake.catalog`
for library users too). What an option says reaches the library as an argument, never through
the environment.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

import click

from unitsel import lake, names
from unitsel.errors import FaultError, InputError
from unitsel.warehouse import DEFAULT_ROOT, Transaction

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    """The group-wide options (`unitsel --catalog … --debug`, `unitsel ingest --scheduler …`),
    kept on click's context for the command that runs."""

    catalog: str | None = None
    data: str | None = None
    scheduler: str | None = None
    debug: bool = False


def settings() -> Settings:
    return click.get_current_context().ensure_object(Settings)


def job(root: Path, **options: Any) -> Transaction:
    """The job handle of the running command: its root with the catalog, data path and
    scheduler the command line gave."""
    given = settings()
    return Transaction(root, catalog=given.catalog, data=given.data, scheduler=given.scheduler,
                       name=click.get_current_context().command_path, **options)


class _Name(click.ParamType[str]):
    """A model id, stimulus set, layer, study … (`unitsel.names`: length and characters)."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        why = names.problem(str(value))
        if why:
            self.fail(why, param, ctx)
        return str(value)


NAME = _Name()


def root_option(f: F) -> F:
    """`--root DIR` (default ./warehouse, or $UNITSEL_ROOT) for every command."""
    return click.option(
        "--root", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ROOT,
        envvar="UNITSEL_ROOT", show_default=True, help="Warehouse folder.",
    )(f)


def layer_options(set_help: str) -> Callable[[F], F]:
    """`--model-id`, `--stimulus-set` (with `set_help`), `--layer` and `--pool` (default none):
    the partition a layer-level job works on."""
    def decorate(f: F) -> F:
        for option in reversed([
            click.option("--model-id", type=NAME, required=True),
            click.option("--stimulus-set", type=NAME, required=True, help=set_help),
            click.option("--layer", type=NAME, required=True),
            click.option("--pool", default="none", show_default=True),
        ]):
            f = option(f)
        return f
    return decorate


def snapshot_option(f: F) -> F:
    """`--snapshot N`: read the warehouse as it was at snapshot N (`unitsel snapshots`)."""
    return click.option("--snapshot", type=int, default=None,
                        help="Read the warehouse as of this snapshot (time travel).")(f)


def _use_scheduler(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(Settings).scheduler = value


def scheduler_option(f: F) -> F:
    """`--scheduler ADDRESS` (or $UNITSEL_SCHEDULER) on a command group: its jobs run their
    per-file work on that Dask cluster."""
    return click.option(
        "--scheduler", envvar="UNITSEL_SCHEDULER", expose_value=False, callback=_use_scheduler,
        help="Dask scheduler (e.g. tcp://10.0.0.5:8786) whose workers run the per-file work; "
             "default this process, or a local cluster for very large work.")(f)


class Group(click.Group):
    """A command group whose commands also come from the entry points of `plugins` (each
    command module registers its commands there, so no group imports them), and which turns
    InputError into a clean one-line error."""

    def __init__(self, *args: Any, plugins: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plugins = plugins

    def list_commands(self, ctx: click.Context) -> list[str]:
        plugged = [ep.name for ep in entry_points(group=self.plugins)]
        return sorted({*super().list_commands(ctx), *plugged})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            found = [ep for ep in entry_points(group=self.plugins) if ep.name == name]
            command = found[0].load() if found else None
        return command

    def invoke(self, ctx: click.Context) -> Any:
        import duckdb

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as error:
            if ctx.ensure_object(Settings).debug:
                raise
            _close_progress_bars()
            raise click.ClickException(_one_line(error, duckdb.Error)) from None


def _one_line(error: Exception, duckdb_error: type[Exception]) -> str:
    """What a failed command says: the input's place, the fault, or, for anything unforeseen,
    the error with a hint (--debug shows where it came from)."""
    lost = lake.catalog_server_lost(error)
    if lost is not None:
        return str(lost)
    if isinstance(error, InputError | FaultError | duckdb_error):
        return lake.without_secrets(str(error))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return (f"no space left on device{f' ({error.filename})' if error.filename else ''}: "
                "nothing was committed; free some space and run it again")
    return (f"{type(error).__name__}: {error} (unexpected: rerun with `unitsel --debug …` "
            "for the traceback and report it)")


def _close_progress_bars() -> None:
    """Close the progress bars a failed job left open, so its error starts on a line of its
    own instead of at the end of a bar's line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
