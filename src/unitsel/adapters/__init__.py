"""One module per source format; each turns its source into frames that match a table.

Adapters take their source as an argument (a path, a model object) and never touch the
warehouse: ingest jobs do that.
"""
