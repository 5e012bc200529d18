"""Runs every `-- case:` pair in tests/sql/*.sql: a query, then the query giving its answer
(an answer `'error: <text>'` means the query must fail with that text)."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from numbers import Real
from pathlib import Path

import duckdb
import pytest

CASES = Path(__file__).parent / "sql"


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for path in sorted(CASES.glob("*.sql")):
        for block in re.split(r"^-- case: ", path.read_text(), flags=re.MULTILINE)[1:]:
            title, body = block.split("\n", 1)
            statements = [s.strip() for s in body.split(";") if s.strip()]
            assert len(statements) == 2, f"{path.name}: case {title!r} needs 2 queries"
            cases.append((f"{path.stem}: {title}", statements[0], statements[1]))
    return cases


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    import unitsel

    return unitsel.connect(tmp_path_factory.mktemp("cases"))


def _same(a: object, b: object) -> bool:
    # Literals like 0.084 are DECIMAL in DuckDB: compare numbers as floats.
    if isinstance(a, Real | Decimal) and isinstance(b, Real | Decimal) and not isinstance(
            a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)
    return a == b


@pytest.mark.parametrize(("title", "query", "expected"), _cases(), ids=lambda v: v[:60])
def test_case(con: duckdb.DuckDBPyConnection, title: str, query: str, expected: str) -> None:
    want = con.sql(expected).fetchall()
    if len(want) == 1 and str(want[0][0]).startswith("error: "):  # the query must fail so
        with pytest.raises(duckdb.Error, match=re.escape(want[0][0].removeprefix("error: "))):
            con.sql(query).fetchall()
        return
    got = con.sql(query).fetchall()
    assert len(got) == len(want), title
    for g, w in zip(got, want, strict=True):
        assert all(_same(x, y) for x, y in zip(g, w, strict=True)), (title, g, w)


def test_every_macro_has_a_case() -> None:
    tested = " ".join(q for _, q, _ in _cases())
    macro_files = (CASES.parent.parent / "sql" / "macros").glob("*.sql")
    defined = [m for path in macro_files
               for m in re.findall(r"CREATE OR REPLACE MACRO (\w+)", path.read_text())]
    assert defined and all(f"{m}(" in tested for m in defined), (
        [m for m in defined if f"{m}(" not in tested])
