"""Recording torch models: values against a direct forward pass, pools, provenance, faults."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

import unitsel
from ingest.activations import ingest_model
from unitsel.adapters import torch_model
from unitsel.adapters.torch_model import TRANSFER_BYTES
from unitsel.cli import cli
from unitsel.errors import InputError

N = 10


def tiny_model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(3 * 4 * 4, 4)
    )


def inputs() -> tuple[torch.Tensor, pl.DataFrame]:
    x = torch.randn(N, 2, 6, 6, generator=torch.Generator().manual_seed(1))
    labels = pl.DataFrame({"stimulus": pl.Series(range(N), dtype=pl.Int32),
                           "uri": pl.Series([None] * N, dtype=pl.String),
                           "label": [str(i % 4) for i in range(N)],
                           "wnid": pl.Series([None] * N, dtype=pl.String)})
    return x, labels


def ingest(root: Path, model: nn.Module, progress: bool = False, **options: object) -> None:
    x, labels = inputs()
    defaults: dict[str, object] = dict(
        model_id="tiny", stimulus_set="noise", architecture="tiny", state="trained",
        preprocessing="{}", source="test", class_names=["0", "1", "2", "3"], batch_size=3)
    with unitsel.Transaction(root, progress=progress) as tx:
        ingest_model(tx, model, x, labels, **{**defaults, **options})  # type: ignore[arg-type]


def matrix(root: Path, layer: str, pool: str) -> np.ndarray:
    frame = unitsel.scan("activations", root).filter(
        (pl.col("layer") == layer) & (pl.col("pool") == pool)).collect()
    n_units = frame["unit"].max() + 1  # type: ignore[operator]
    out = np.full((N, n_units), np.nan, dtype=np.float32)
    out[frame["stimulus"].to_numpy(), frame["unit"].to_numpy()] = frame["activation"].to_numpy()
    return out


def close(actual: np.ndarray, expected: np.ndarray) -> None:
    # float32 rounding: kernels may sum in another order for another batch size.
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


ALL_POOLS = ("none", "mean", "max", "l2")


@pytest.mark.parametrize("transfer_bytes", [1, TRANSFER_BYTES])
def test_default_layers_match_a_direct_forward_pass(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                    transfer_bytes: int) -> None:
    """Blocks moved to the host once per batch (the default) or as each layer runs."""
    monkeypatch.setattr(torch_model, "TRANSFER_BYTES", transfer_bytes)
    model = tiny_model()
    ingest(root, model, pools=ALL_POOLS)
    x, _ = inputs()
    with torch.no_grad():
        conv = model[0](x)  # before the in-place ReLU, which must not leak into it
        logits = model(x)
    close(matrix(root, "0", "none"), conv.reshape(N, -1).numpy())
    assert (matrix(root, "0", "none") < 0).any()
    spatial = conv.reshape(N, 3, -1).numpy()
    close(matrix(root, "0", "mean"), spatial.mean(axis=2))
    close(matrix(root, "0", "max"), spatial.max(axis=2))
    close(matrix(root, "0", "l2"), np.sqrt((spatial**2).sum(axis=2)))
    close(matrix(root, "3", "none"), logits.numpy())
    e = np.exp(logits.numpy() - logits.numpy().max(axis=1, keepdims=True))
    close(matrix(root, "prob", "none"), e / e.sum(axis=1, keepdims=True))
    with unitsel.connection(root) as con:
        layers = con.sql("SELECT layer, pool, kind, n_units, shape FROM layers "
                         "ORDER BY layer, pool").fetchall()
        predictions = con.sql("SELECT predicted_label, is_correct FROM predictions "
                              "ORDER BY stimulus").fetchall()
    # The output is the last Linear's output, so no separate `output` layer is recorded.
    assert layers == [("0", "l2", "Conv2d", 3, [3]), ("0", "max", "Conv2d", 3, [3]),
                      ("0", "mean", "Conv2d", 3, [3]), ("0", "none", "Conv2d", 48, [3, 4, 4]),
                      ("3", "none", "Linear", 4, [4]), ("prob", "none", "Softmax", 4, [4])]
    top1 = logits.argmax(dim=1).numpy()
    assert predictions == [(str(t), str(t) == str(i % 4)) for i, t in enumerate(top1)]


def test_batch_size_does_not_change_the_values(tmp_path: Path) -> None:
    ingest(tmp_path / "a", tiny_model(), batch_size=1, pools=ALL_POOLS)
    ingest(tmp_path / "b", tiny_model(), batch_size=7, pools=ALL_POOLS)
    for layer, pool in (("0", "none"), ("0", "l2"), ("prob", "none")):
        close(matrix(tmp_path / "a", layer, pool),
                                   matrix(tmp_path / "b", layer, pool))


def test_conv_layers_default_to_kernel_pools_after_a_preflight_estimate(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ingest(root, tiny_model(), progress=True)
    with unitsel.connection(root) as con:
        recorded = con.sql("SELECT layer, pool, n_units FROM layers ORDER BY ALL").fetchall()
    assert recorded == [("0", "l2", 3), ("0", "max", 3), ("0", "mean", 3), ("3", "none", 4),
                        ("prob", "none", 4)]
    # Printed before the forward pass: per layer and pool its units and rows (N stimuli).
    lines = {tuple(line.split()[:4]) for line in capsys.readouterr().err.splitlines()
             if line.strip()}
    for layer, pool, units in recorded:
        assert (layer, pool, str(units), f"{units * N:,}") in lines
    assert any(line[0] == "total" and line[1] == f"{17 * N:,}" for line in lines)


def test_weights_hash_is_sha256_of_the_state_dict(root: Path) -> None:
    model = tiny_model()
    ingest(root, model)
    digest = hashlib.sha256()
    for name, t in model.state_dict().items():
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.numpy().tobytes())
    stored = unitsel.scan("models", root).collect()["weights_sha256"].item()
    assert stored == digest.hexdigest()


def test_shared_module_is_refused_and_nothing_is_written(root: Path) -> None:
    relu = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(2, 2, 1), relu, nn.Conv2d(2, 2, 1), relu)
    with pytest.raises(InputError, match="runs more than once"):
        ingest(root, model, layers=["1"], class_names=None)
    assert not root.exists()  # a failed first job leaves no root


def test_unknown_layer_is_named(root: Path) -> None:
    with pytest.raises(InputError, match=r"no modules \['fc9'\]"):
        ingest(root, tiny_model(), layers=["fc9"])


def test_cli_records_a_torchvision_model_on_an_image_folder(tmp_path: Path, root: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    rows = ["stimulus,uri,label"]
    for i in range(4):
        Image.fromarray((np.random.default_rng(i).random((40, 40, 3)) * 255).astype(np.uint8)
                        ).save(images / f"{i}.png")
        rows.append(f"{i},{i}.png,{'a' if i < 2 else 'b'}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, [
        "ingest", "activations", "--model-id", "r18", "--arch", "resnet18",
        "--stimulus-set", "noise", "--images", str(images), "--labels",
        str(tmp_path / "labels.csv"), "--layers", "conv1,layer4.1.conv2,fc,prob",
        "--pools", "none,mean", "--image-size", "32", "--resize", "32", "--batch-size", "3",
        "--root", str(root)])
    assert result.exit_code == 0, result.output
    with unitsel.connection(root) as con:
        assert con.sql("SELECT state, source FROM models").fetchone() == (
            "untrained", "random init, seed 0")
        counts = dict(con.sql("SELECT layer || '/' || pool, count(*) FROM activations "
                              "GROUP BY ALL").fetchall())
    assert counts == {"conv1/none": 4 * 64 * 16 * 16, "conv1/mean": 4 * 64,
                      "layer4.1.conv2/none": 4 * 512, "layer4.1.conv2/mean": 4 * 512,
                      "fc/none": 4 * 1000, "prob/none": 4 * 1000}
    # Thumbnails where the dashboards look: each image shrunk to at most 128 px, same uri.
    Image.fromarray(np.zeros((300, 200, 3), np.uint8)).save(images / "0.png")
    result = CliRunner().invoke(cli, [
        "ingest", "activations", "--model-id", "r18", "--arch", "resnet18",
        "--stimulus-set", "noise", "--images", str(images), "--labels",
        str(tmp_path / "labels.csv"), "--layers", "fc", "--image-size", "32", "--resize",
        "32", "--root", str(root), "--replace-stimuli"])
    assert result.exit_code == 0, result.output
    with Image.open(root / "images" / "noise" / "0.png") as thumbnail:
        assert thumbnail.size == (85, 128)
    assert sorted(p.name for p in (root / "images" / "noise").iterdir()) == [
        f"{i}.png" for i in range(4)]


def test_a_failed_first_cli_job_leaves_no_root_and_no_thumbnails(tmp_path: Path,
                                                                  root: Path) -> None:
    """The thumbnails are written beside the forward pass, staged outside the new root; a
    job that fails (an unknown layer, found only once the model runs) leaves neither."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(images / f"{i}.png")
    (tmp_path / "labels.csv").write_text("stimulus,uri,label\n0,0.png,a\n1,1.png,b\n")
    before = sorted(tmp_path.iterdir())
    result = CliRunner().invoke(cli, [
        "ingest", "activations", "--model-id", "r18", "--arch", "resnet18",
        "--stimulus-set", "s", "--images", str(images), "--labels",
        str(tmp_path / "labels.csv"), "--layers", "fc9", "--image-size", "32", "--resize",
        "32", "--root", str(root)])
    assert result.exit_code != 0 and "fc9" in result.output, result.output
    assert sorted(tmp_path.iterdir()) == before  # no root, no staging folder beside it


def test_cli_missing_image_is_located(tmp_path: Path, root: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels.csv").write_text("stimulus,uri,label\n0,missing.png,a\n")
    result = CliRunner().invoke(cli, [
        "ingest", "activations", "--model-id", "r18", "--arch", "resnet18",
        "--stimulus-set", "s", "--images", str(tmp_path / "images"), "--labels",
        str(tmp_path / "labels.csv"), "--root", str(root)])
    assert result.exit_code != 0
    assert "labels.csv" in result.output and "missing.png does not exist" in result.output


def test_layers_keep_the_networks_order(root: Path) -> None:
    """`layers.position` follows the forward pass, not the names: here alphabetical order
    ('classify' < 'stem') is the reverse of the network's."""
    from collections import OrderedDict

    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict([
        ("stem", nn.Conv2d(2, 3, 3)), ("flatten", nn.Flatten()),
        ("classify", nn.Linear(3 * 4 * 4, 4))]))
    ingest(root, model, pools=("mean",))
    rows = unitsel.scan("layers", root).collect().sort("position", "layer", "pool")
    assert rows.unique("layer", maintain_order=True)["layer"].to_list() == [
        "stem", "classify", "prob"]
    assert rows.filter(layer="stem")["position"].unique().to_list() == [0]


@pytest.mark.parametrize("device", ["nodevice", "cuda:64"])
def test_a_device_this_machine_lacks_is_named(root: Path, device: str) -> None:
    with pytest.raises(InputError, match=f"device '{device}' is not available here"):
        ingest(root, tiny_model(), device=device)
    assert not root.exists()
