"""The import contract (docs/design.md, "Layers") and the CLI's reach, as tests.

Every import of a project module, at module level, inside a function or under TYPE_CHECKING,
points to the same or a lower layer; there are no import cycles; the adapters never touch the
warehouse; src/unitsel never imports ingest/ or dashboards/. Every command a command module
defines is reachable from `unitsel --help`, and every ingest source's from `unitsel ingest --help`.
"""

from __future__ import annotations

import ast
import graphlib
import importlib
import itertools
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import NamedTuple

import click

from .conftest import REPO

# Bottom to top. `pkg.*` also names the package `pkg` itself; `*` matches within one name part.
LAYERS: list[list[str]] = [
    ["unitsel.schema", "unitsel.errors", "unitsel.names", "unitsel.compute", "unitsel.sqlfiles",
     "unitsel.kernel",
     "unitsel.files", "unitsel.storage"],
    ["unitsel.lake"],
    ["unitsel.summaries"],  # below the warehouse: the commit calls summaries.Build
    ["unitsel.warehouse", "unitsel"],
    ["unitsel.adapters.*", "unitsel.analyses.*", "unitsel.wordnet", "unitsel.concepts",
     "unitsel.concept_masks",
     "unitsel.study", "unitsel.exports", "unitsel.migrate", "unitsel.integrity"],
    ["unitsel.options"],
    ["unitsel.cli", "unitsel.*_commands"],
    ["ingest.*", "dashboards.*"],
]
# Where each top-level package's files live.
ROOTS = {"unitsel": REPO / "src" / "unitsel", "ingest": REPO / "ingest",
         "dashboards": REPO / "dashboards"}
WAREHOUSE = {"unitsel", "unitsel.warehouse", "unitsel.lake", "unitsel.summaries"}


class Import(NamedTuple):
    source: str  # the importing module
    target: str  # the project module imported
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.where} {self.source} -> {self.target}"


def _modules() -> dict[str, Path]:
    found = {}
    for top, folder in ROOTS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str, source: str) -> str | None:
    """The project module `name` (as imported by `source`) loads, or None when not ours.
    The dashboards run with dashboards/ on sys.path: their `from ui import …` is dashboards.ui."""
    if source.startswith("dashboards.") and f"dashboards.{name.split('.')[0]}" in MODULES:
        name = f"dashboards.{name}"
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()  # `import unitsel.analyses.x.y` where y is a name in x
    return ".".join(parts) or None


def _imports_of(module: str, path: Path) -> Iterator[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            # `from pkg import sub` imports the submodule pkg.sub; `from pkg import name`, pkg.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                     for alias in node.names]
        for name in names:
            target = _resolve(name, module)
            if target is not None and target != module:
                yield Import(module, target, where)


IMPORTS = list(dict.fromkeys(imp for module, path in MODULES.items()
                             for imp in _imports_of(module, path)))


def _matches(pattern: str, module: str) -> bool:
    if pattern.endswith(".*") and module == pattern[:-2]:
        return True
    want, have = pattern.split("."), module.split(".")
    if want[-1] == "*":  # a package: any depth below it
        return have[: len(want) - 1] == want[:-1] and len(have) >= len(want)
    return len(want) == len(have) and all(map(fnmatchcase, have, want))


def layer(module: str) -> int | None:
    found = [i for i, patterns in enumerate(LAYERS) for p in patterns if _matches(p, module)]
    return found[0] if found else None


def test_every_module_has_a_layer() -> None:
    missing = [f"{m} ({MODULES[m].relative_to(REPO)})" for m in MODULES if layer(m) is None]
    assert not missing, ("place each of these modules in a layer of LAYERS in "
                         f"tests/test_layers.py (and docs/design.md's picture): {missing}")


def test_imports_point_down_or_across() -> None:
    levels = {m: layer(m) for m in MODULES}
    upward = [f"{imp} (layer {levels[imp.source]} -> {levels[imp.target]})" for imp in IMPORTS
              if (levels[imp.source] or 0) < (levels[imp.target] or 0)]
    assert not upward, "imports pointing to a higher layer:\n" + "\n".join(upward)


def test_adapters_never_import_the_warehouse() -> None:
    bad = [str(imp) for imp in IMPORTS
           if _matches("unitsel.adapters.*", imp.source) and imp.target in WAREHOUSE]
    assert not bad, "adapters turn inputs into frames; jobs write them:\n" + "\n".join(bad)


def test_src_never_imports_ingest_or_dashboards() -> None:
    bad = [str(imp) for imp in IMPORTS if imp.source.split(".")[0] == "unitsel"
           and imp.target.split(".")[0] in ("ingest", "dashboards")]
    assert not bad, "src/unitsel imports the layer on top of it:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in IMPORTS:
        graph[imp.source].add(imp.target)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        cycle = error.args[1]  # [a, b, …, a]: each imports the one before it
        inside = [str(imp) for imp in IMPORTS
                  if (imp.target, imp.source) in itertools.pairwise(cycle)]
        raise AssertionError("import cycle " + " <- ".join(cycle) + ":\n"
                             + "\n".join(inside)) from None


def _reachable(group: click.Command, ctx: click.Context) -> Iterator[click.Command]:
    """`group` and every command below it, as its --help (list_commands) finds them."""
    yield group
    if isinstance(group, click.Group):
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is not None:
                yield from _reachable(command, click.Context(command, parent=ctx,
                                                             info_name=name))


def _defined_in(module_name: str) -> list[tuple[str, click.Command]]:
    module = importlib.import_module(module_name)
    return [(f"{module_name}:{attr}", value) for attr, value in sorted(vars(module).items())
            if isinstance(value, click.Command)
            and getattr(value.callback, "__module__", module_name) == module_name]


def test_every_command_is_reachable_from_the_cli() -> None:
    from click.testing import CliRunner

    from unitsel.cli import cli

    for args in (["--help"], ["ingest", "--help"], ["analyse", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
    ctx = click.Context(cli, info_name="unitsel")
    everything = list(_reachable(cli, ctx))
    ingest = cli.get_command(ctx, "ingest")
    assert ingest is not None, "`unitsel ingest` is missing"
    under_ingest = list(_reachable(ingest, click.Context(ingest, parent=ctx,
                                                         info_name="ingest")))
    sources = [m for m in MODULES if m.startswith("ingest.") and not m.startswith("ingest.demos")
               and not m.rpartition(".")[2].startswith("_")]
    commands = ["unitsel.cli", *(m for m in MODULES if _matches("unitsel.*_commands", m))]
    assert sources and commands
    lost = [f"{name} (not under `unitsel ingest`)" for m in sources for name, c in _defined_in(m)
            if not any(c is r for r in under_ingest)]
    lost += [f"{name} (not under `unitsel`)" for m in commands for name, c in _defined_in(m)
             if not any(c is r for r in everything)]
    assert not lost, ("commands no --help lists: register each under the entry points of its "
                      "group in pyproject.toml (then reinstall: `pip install -e .`):\n"
                      + "\n".join(lost))
