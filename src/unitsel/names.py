"""What a name may be: model ids, stimulus sets, layers, pools, studies, concept sets, states.

Names become partition values, so they are stored verbatim and percent-encoded in the data
files' folder names (which are only for people browsing). A name is 1 to `MAX_CHARS`
characters, has no control characters (tabs, newlines) and is not one DuckLake reads back as
NULL ('null' in any case, `__HIVE_DEFAULT_PARTITION__`); its percent-encoded form must fit a
folder name (`MAX_ENCODED_BYTES`), which only names of many non-ASCII characters reach.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

MAX_CHARS = 128
MAX_ENCODED_BYTES = 240  # a folder name is at most 255 bytes, `<key>=` included
READ_AS_NULL = ("null", "__hive_default_partition__")


def problem(value: str) -> str | None:
    """Why `value` cannot be a name, or None when it can."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_CHARS:
        return f"{len(value)} characters; a name has at most {MAX_CHARS}"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "control characters (tab, newline …) are not allowed in a name"
    if value.lower() in READ_AS_NULL:
        return f"{value!r} is read back as NULL by DuckLake; choose another name"
    if len(quote(value, safe="")) > MAX_ENCODED_BYTES:
        return (f"too long once percent-encoded ({len(quote(value, safe=''))} bytes, at most "
                f"{MAX_ENCODED_BYTES}); use fewer non-ASCII characters")
    return None
