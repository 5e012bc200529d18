"""The dashboards: every page through Streamlit's AppTest over the demo warehouse and over an
empty one, and the real server driven by headless Chromium (screenshots kept as artifacts)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from .conftest import REPO

APP = str(REPO / "dashboards" / "app.py")
PAGES = {"overview": "unitsel warehouse", "layers": "Layer profile", "unit": "Unit",
         "semantics": "Semantics (DORA)", "people": "People"}
ARTIFACTS = Path(os.environ.get("UNITSEL_ARTIFACTS", REPO / "tests" / "artifacts"))


def _app(root: Path, monkeypatch: pytest.MonkeyPatch, page: str,
         params: dict[str, str] | None = None) -> AppTest:
    monkeypatch.setenv("UNITSEL_ROOT", str(root))
    at = AppTest.from_file(APP, default_timeout=300)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    if page != "overview":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert [t.value for t in at.title] == [PAGES[page]]
    return at


def _charts(at: AppTest) -> int:
    return len(at.get("vega_lite_chart"))


def test_every_page_shows_the_demo(demo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    overview = _app(demo_root, monkeypatch, "overview")
    computed = overview.dataframe[-1].value
    assert set(computed["table"]) >= {"activations", "mantel_results", "rating_summary"}
    layers = _app(demo_root, monkeypatch, "layers")
    assert _charts(layers) >= 3  # selectivity per layer; INVERT's best AUROC and lengths
    unit = _app(demo_root, monkeypatch, "unit")
    assert _charts(unit) == 2 and len(unit.dataframe) >= 2  # jitter, histogram; metrics, top
    semantics = _app(demo_root, monkeypatch, "semantics", {"model": "demo-cnn-trained"})
    assert _charts(semantics) == 3  # functional and semantic matrices, atlas
    people = _app(demo_root, monkeypatch, "people")
    assert len(people.dataframe) == 5 and people.warning  # simulated studies are flagged


def test_unit_page_url_selects_the_unit(demo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = {"model": "demo-cnn-trained", "set": "digits", "layer": "classifier.3",
              "pool": "none", "unit": "7"}
    at = _app(demo_root, monkeypatch, "unit", params)
    chosen = {box.label: box.value for box in at.selectbox}
    assert chosen["Model"] == "demo-cnn-trained" and chosen["Layer"] == "classifier.3"
    assert chosen["Unit"] == 7
    metrics = at.dataframe[0].value
    assert dict(zip(metrics["column"], metrics["value"], strict=True))["top_label"] == "7"
    labels = next(frame.value for frame in at.dataframe if "formula" in frame.value.columns)
    best = labels[(labels["concept_set"] == "labels") & (labels["mode"] == "positive")]
    assert best["formula"].iloc[0] == "7" and best["auroc"].iloc[0] > 0.9  # INVERT's label


def test_empty_warehouse_says_what_fills_each_page(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for page in PAGES:
        at = _app(tmp_path / "empty", monkeypatch, page)
        assert any("unitsel" in info.value for info in at.info), page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(root: Path, port: int) -> subprocess.Popen[bytes]:
    """`unitsel dashboard` as users run it, with its defaults (it binds 127.0.0.1)."""
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("unitsel")), "dashboard", "--port", str(port),
         "--root", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    return process


@pytest.fixture
def server(demo_root: Path) -> Iterator[str]:
    port = _free_port()
    process = _start(demo_root, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _listening(port: int) -> list[str]:
    """The local addresses with a socket listening on `port` (from /proc/net/tcp{,6})."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def test_dashboard_listens_on_loopback_only_and_stops_with_its_command(
        demo_root: Path) -> None:
    port = _free_port()
    process = _start(demo_root, port)
    try:
        assert _listening(port) == ["0100007F"]  # 127.0.0.1; nothing on IPv6 or elsewhere
    finally:
        process.terminate()  # SIGTERM to `unitsel dashboard`, not to the server it started
        process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _listening(port) == []


def test_images_outside_the_warehouse_are_refused(tmp_path: Path) -> None:
    from unitsel.adapters.labels import image_file

    folder = tmp_path / "images" / "s"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("x")
    (folder / "link.png").symlink_to(tmp_path / "secret.txt")
    assert image_file(str(folder), "a.png") == str((folder / "a.png").resolve())
    for uri in ("../../secret.txt", "/etc/passwd", "link.png", "sub/../../../secret.txt"):
        assert image_file(str(folder), uri) is None, uri
    for uri in ("../../secret.txt", "/etc/passwd", "sub/../../../secret.txt"):
        assert image_file("s3://bucket/lake/images/s", uri) is None, uri
    assert image_file("s3://bucket/lake/images/s", "a/b.png") == "s3://bucket/lake/images/s/a/b.png"


def test_pages_in_headless_chromium(server: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    paths = {"overview": "", "layers": "layers",
             "unit": "unit?model=demo-cnn-trained&set=digits&layer=classifier.3&pool=none&unit=7",
             "semantics": "semantics", "people": "people"}
    try:
        for page, path in paths.items():
            driver.get(f"{server}/{path}")
            WebDriverWait(driver, 120).until(expected_conditions.text_to_be_present_in_element(
                (By.TAG_NAME, "h1"), PAGES[page]))
            # Let the page finish its queries and charts (Streamlit's status widget goes away).
            WebDriverWait(driver, 120).until(lambda d: not d.find_elements(
                By.CSS_SELECTOR, "[data-testid='stStatusWidget']"))
            time.sleep(2)
            driver.save_screenshot(str(ARTIFACTS / f"dashboard-{page}.png"))
            text = driver.find_element(By.TAG_NAME, "body").text
            assert "Traceback" not in text and "Error" not in text, page
            assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
            if page == "unit":
                assert driver.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")
    finally:
        driver.quit()
