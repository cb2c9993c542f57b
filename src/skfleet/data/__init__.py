"""Tables in and out: sources and sinks for files (local, S3) and PostgreSQL, keyed by URL scheme."""

from skfleet.data.base import IF_EXISTS_CHOICES, Partition, Sink, Source
from skfleet.data.registry import Backend, open_sink, open_source, register_backend, scheme_of

__all__ = [
    "IF_EXISTS_CHOICES",
    "Backend",
    "Partition",
    "Sink",
    "Source",
    "open_sink",
    "open_source",
    "register_backend",
    "scheme_of",
]
