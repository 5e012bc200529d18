"""`unitsel ingest texts`: embed a concept set's texts (and the base templates) with a text
encoder into `text_embeddings`, for concept scores.

Texts: a concept set already in the warehouse (`concepts`: each synset's first lemma, '_' as
spaces), `wordnet-nouns` (every WordNet noun lemma, ~120k texts, ~80k synsets), a text file with
one concept per line, or a CSV with a `name` column (Broden's `label.csv`; names such as
`dog-s` keep their suffix). The templates ('a photo
of a' and any `--template`) go to concept set `templates`.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import polars as pl
from tqdm import tqdm

from unitsel import wordnet
from unitsel.adapters.encoders import SentenceTransformerText, TextEncoder
from unitsel.analyses.concept_scores import TEMPLATE_SET
from unitsel.analyses.semantics import concept_set_frame
from unitsel.errors import InputError
from unitsel.options import NAME, job, root_option
from unitsel.schema import TEXT_EMBEDDINGS
from unitsel.warehouse import Transaction

WORDNET_NOUNS = "wordnet-nouns"
DEFAULT_TEMPLATE = "a photo of a"


def _file_texts(path: Path) -> list[str]:
    if path.suffix.lower() != ".csv":
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    try:  # Broden's label.csv and the like: the texts are its `name` column
        names = pl.read_csv(path, infer_schema=False)["name"]
    except (pl.exceptions.PolarsError, OSError) as error:
        raise InputError(f"a concept CSV needs a 'name' column: {error}", file=path) from None
    return [n.strip() for n in names.drop_nulls() if n.strip()]


def concept_texts(tx: Transaction, concept_set: str, path: Path | None = None) -> list[str]:
    """The concept texts of a file, of all WordNet noun lemmas, or of a stored concept set."""
    if path is not None:
        texts = _file_texts(path)
        if not texts:
            raise InputError("no concept texts", file=path)
    elif concept_set == WORDNET_NOUNS:
        texts = [name.replace("_", " ") for name in wordnet.wordnet().all_lemma_names("n")]
    else:
        texts = [n.replace("_", " ") for n in concept_set_frame(tx, concept_set)["name"]]
    return sorted(set(texts))


def embed_texts(tx: Transaction, encoder: TextEncoder, concept_set: str, texts: list[str],
                templates: tuple[str, ...] = (DEFAULT_TEMPLATE,), chunk: int = 4096) -> int:
    """Write (replace) the embeddings of `texts` and of the templates; returns texts written."""
    for name, batch_texts in ((concept_set, texts), (TEMPLATE_SET, sorted(set(templates)))):
        for start in tqdm(range(0, len(batch_texts), chunk), desc=f"embed {name}",
                          unit="chunk", disable=not tx.progress):
            part = batch_texts[start:start + chunk]
            vectors = encoder.encode_texts(part)
            tx.write_partition(TEXT_EMBEDDINGS, {"encoder": encoder.name, "concept_set": name},
                               pl.DataFrame({"concept": part, "embedding": pl.Series(
                                   list(np.asarray(vectors, np.float32)),
                                   dtype=pl.List(pl.Float32))}))
    return len(texts)


@click.command("texts")
@click.option("--concept-set", type=NAME, required=True,
              help=f"A stored concept set, '{WORDNET_NOUNS}', or a name for --file.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="One concept text per line.")
@click.option("--model", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A sentence-transformers model folder; default the bundled MiniLM.")
@click.option("--clip-arch", default=None, help="Embed with an open_clip model instead …")
@click.option("--clip-checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="… from this local checkpoint (its image side: ingest images).")
@click.option("--template", "templates", multiple=True, default=(DEFAULT_TEMPLATE,),
              show_default=True, help="Base template text(s).")
@root_option
def texts_command(concept_set: str, path: Path | None, model: Path | None,
                  clip_arch: str | None, clip_checkpoint: Path | None,
                  templates: tuple[str, ...], root: Path) -> None:
    """Embed concept texts with a text encoder -> text_embeddings."""
    encoder: TextEncoder
    if clip_arch is not None and clip_checkpoint is not None:
        from unitsel.adapters.encoders import OpenClip

        encoder = OpenClip(clip_arch, clip_checkpoint)
    else:
        encoder = SentenceTransformerText(model)
    with job(root) as tx:
        count = embed_texts(tx, encoder, concept_set, concept_texts(tx, concept_set, path),
                            templates)
    click.echo(f"text_embeddings: {count} texts of {concept_set} with {encoder.name}")
