"""Benchmark: `unitsel ingest activations` (its job, `ingest_model`) against the bare forward
pass it wraps: an untrained torchvision MobileNetV2 on 256 images at 112 px (JPEG files of
160 px, resized to 128 and centre-cropped, batches of 64), every default layer, the default
kernel pools mean/max/l2.

Both sides read and preprocess the same image files the same way (`unitsel.adapters.images`),
so the ratio is what recording, writing and summarising add. Each side runs twice; the faster
run counts. Runs on the GPU when there is one (`--device`), and reports images/s of both.

Two floors of the ingest's own output, measured in the same run, say how much of the rest
no code of unitsel's can remove on this machine:

- write floor: every data file the ingest wrote (activations and summaries) written again
  by pyarrow with the same encoding and no catalog (the rows read into memory first);
- catalog floor: the same files registered in a fresh lake, one `ducklake_add_data_files`
  call per table and one commit: DuckLake's fixed cost per file (it opens each file and,
  in 1.5.5, reads the table's path from the catalog once per file at commit).

    python bench/ingest_overhead.py [--images 256] [--size 112] [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torchvision
from PIL import Image

from ingest.activations import ingest_model
from ingest.demos import steps
from unitsel import lake, storage
from unitsel.adapters import images
from unitsel.schema import TABLES


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None).eval().to(args.device)
    prep = images.Preprocessing(image_size=args.size, resize=args.size * 8 // 7,
                                mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    labels = pl.DataFrame({"stimulus": range(args.images),
                           "uri": [f"{i}.jpg" for i in range(args.images)],
                           "label": [f"class{i % 10}" for i in range(args.images)],
                           "wnid": None},
                          schema_overrides={"stimulus": pl.Int32, "wnid": pl.String})
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        paths = [Path(tmp) / uri for uri in labels["uri"]]
        for path in paths:
            pixels = rng.integers(0, 256, size=(args.size * 10 // 7,) * 2 + (3,), dtype=np.uint8)
            Image.fromarray(pixels).save(path)

        def forward() -> None:
            with torch.no_grad():
                for batch in images.batches(paths, prep, 64):
                    model(batch.to(args.device))
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()

        roots: list[Path] = []

        def ingest() -> None:
            roots.append(Path(tmp) / f"w{len(roots)}")  # a new warehouse each run
            steps(roots[-1], progress=False)(
                ingest_model, model, images.batches(paths, prep, 64), labels,
                model_id="mobilenet", stimulus_set="bench", architecture="mobilenet_v2",
                state="untrained", preprocessing=prep.to_json(), source="random init",
                device=args.device)

        timings = {}
        for name, run in (("forward", forward), ("ingest", ingest)):
            seconds = []
            for _ in range(2):
                started = time.perf_counter()
                run()
                seconds.append(time.perf_counter() - started)
            timings[name] = min(seconds)
        files = written_files(roots[-1])
        timings["write"] = write_floor(files, Path(tmp) / "again")
        timings["catalog"] = catalog_floor(files, Path(tmp) / "fresh")
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    floors = timings["forward"] + timings["write"] + timings["catalog"]
    print(f"MobileNetV2, {args.images} images at {args.size} px on {where}: forward pass "
          f"{timings['forward']:.2f} s ({args.images / timings['forward']:.0f} images/s), "
          f"ingest {timings['ingest']:.2f} s ({args.images / timings['ingest']:.0f} "
          f"images/s), ratio {timings['ingest'] / timings['forward']:.2f}\n"
          f"floors of its {sum(map(len, files.values()))} data files: write "
          f"{timings['write']:.2f} s, catalog {timings['catalog']:.2f} s; "
          f"ingest / (forward + write + catalog) {timings['ingest'] / floors:.2f}")


def written_files(root: Path) -> dict[str, list[str]]:
    """Per table, the data files of the warehouse's newest snapshot."""
    con = lake.attach(root)
    try:
        return {t.name: [path for _, path, _, _ in lake.data_files(con, root, t)]
                for t in TABLES.values()}
    finally:
        con.close()


def write_floor(files: dict[str, list[str]], folder: Path) -> float:
    """Seconds pyarrow takes to write the files' rows again as unitsel encodes them
    (dictionaries for strings only, the data path's compression), no catalog."""
    tables = [pq.ParquetFile(path).read() for paths in files.values() for path in paths]
    folder.mkdir()
    started = time.perf_counter()
    for i, table in enumerate(tables):
        strings = [f.name for f in table.schema
                   if pa.types.is_string(f.type) or pa.types.is_dictionary(f.type)]
        pq.write_table(table, folder / f"{i}.parquet", use_dictionary=strings,
                       store_schema=False, **storage.compression(str(folder)))
    return time.perf_counter() - started


def catalog_floor(files: dict[str, list[str]], root: Path) -> float:
    """Seconds DuckLake takes to register the files in a fresh lake: one
    `ducklake_add_data_files` call per table and one commit."""
    catalog = lake.init(root, create=True)
    started = time.perf_counter()
    lake.commit(root, catalog, lambda con: [lake.register_files(con, TABLES[name], paths)
                                            for name, paths in files.items()], "floor")
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
