"""The one error users see for bad input: it names the file, row and column."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input, located. Raised before anything is written to the warehouse."""

    def __init__(
        self,
        message: str,
        *,
        file: object | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        where = [
            part
            for part in (
                self.file,
                None if row is None else f"row {row}",
                None if column is None else (f"option {column}" if column.startswith("--")
                                             else f"column {column!r}"),
            )
            if part is not None
        ]
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class FaultError(RuntimeError):
    """A fault of the machine or of a service, not of the input: a full disk, a lost catalog
    server, a data file gone, other jobs committing throughout. Shown as one line naming what
    failed; nothing of the job was committed."""
