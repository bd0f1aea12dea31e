"""What can go wrong with a source, as exceptions every layer above can catch by kind.

Why at the bottom of the source layer: the connections, the SQL files, the contract and the adapters
all raise them, and none of those should import another just to name its error.
"""

from __future__ import annotations


class SourceError(RuntimeError):
    """A source could not be reached or queried; the message says which and why."""


class SourceConfigError(SourceError):
    """A connection is set up wrongly (a missing file, an unknown type or timezone): permanent."""


class AdapterError(ValueError):
    """An adapter name that does not exist, or one used on a connection it does not fit."""
