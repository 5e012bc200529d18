"""WordNet 3.0 offline, through NLTK.

NLTK's downloader cannot be reached here, so the data comes from Debian's `wordnet-base` and
`wordnet-sense-index` packages (`/usr/share/wordnet`). NLTK ≥ 3.9 reads WordNet only from a
folder `nltk_data/corpora/wordnet` of real files (not symlinks) on `nltk.data.path`, and it
needs a `lexnames` file that Debian does not ship: `install` copies the files into the
environment's own `nltk_data` (under `sys.prefix`, which NLTK searches) and adds the fixed
45-line lexicographer table kept in `unitsel/data/wordnet-lexnames`.

Debian's verb and adjective byte offsets differ from Princeton's; noun offsets are identical,
so unitsel keys every concept by its noun wnid (`n02084071`), never by a verb/adjective offset.
"""

from __future__ import annotations

import functools
import shutil
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from unitsel.errors import InputError
from unitsel.files import replaced_folder

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset, WordNetCorpusReader

DEBIAN_WORDNET = Path("/usr/share/wordnet")
# The files NLTK's WordNetCorpusReader opens (its _FILES), lexnames apart.
DEBIAN_FILES = (
    "cntlist.rev", "index.sense", "index.adj", "index.adv", "index.noun", "index.verb",
    "data.adj", "data.adv", "data.noun", "data.verb", "adj.exc", "adv.exc", "noun.exc",
    "verb.exc",
)
APT_HINT = ("apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index, "
            "then `unitsel wordnet` (make demo / make test do both)")


def install_target() -> Path:
    """`<sys.prefix>/nltk_data/corpora/wordnet`: on NLTK's path for this environment only."""
    return Path(sys.prefix) / "nltk_data" / "corpora" / "wordnet"


def install(source: Path = DEBIAN_WORDNET, target: Path | None = None) -> Path:
    """Copy Debian's WordNet files and the lexnames table into `target`, atomically."""
    target = target or install_target()
    missing = [name for name in DEBIAN_FILES if not (source / name).is_file()]
    if missing:
        raise InputError(f"WordNet files {missing} are missing; install them with {APT_HINT}",
                         file=source)
    with replaced_folder(target) as staging:
        for name in DEBIAN_FILES:
            shutil.copyfile(source / name, staging / name)  # copies: NLTK rejects symlinks
        lexnames = resources.files("unitsel") / "data" / "wordnet-lexnames"
        (staging / "lexnames").write_text(lexnames.read_text())
    return target


@functools.cache
def wordnet() -> WordNetCorpusReader:
    """NLTK's WordNet reader, or a clear error saying how to install WordNet."""
    from nltk.corpus import wordnet as wn

    try:
        wn.ensure_loaded()
    except LookupError:
        raise InputError(f"WordNet is not installed for NLTK; {APT_HINT}") from None
    return wn


def synset(wnid: str) -> Synset:
    """The noun synset of a wnid such as 'n02084071' (a clear error for anything else)."""
    if len(wnid) != 9 or wnid[0] != "n" or not wnid[1:].isdigit():
        raise InputError(f"{wnid!r} is not a noun wnid like 'n02084071'")
    reader = wordnet()
    with warnings.catch_warnings():  # NLTK warns and returns None for an unknown offset
        warnings.simplefilter("ignore", UserWarning)
        try:
            found = reader.synset_from_pos_and_offset("n", int(wnid[1:]))
        except Exception:  # an offset inside a line: NLTK raises WordNetError or ValueError
            found = None
    if found is None:
        raise InputError(f"no WordNet 3.0 noun synset has offset {wnid}")
    return found


def wnid(s: Synset) -> str:
    """The noun wnid of a synset ('n' + 8-digit offset)."""
    if s.pos() != "n":
        raise InputError(f"{s.name()} is not a noun; concepts are keyed by noun wnids")
    return f"n{s.offset():08d}"
