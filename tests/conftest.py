from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo warehouse, built once per session through the real jobs and writer."""
    from ingest.demo import run_demo

    root = tmp_path_factory.mktemp("demo") / "warehouse"
    run_demo(root, progress=False)
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"
