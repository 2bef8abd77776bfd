"""Exceptions raised by the engine (bad input raises plain ``ValueError``)."""


class ScanCancelled(RuntimeError):
    """The caller's cancel event was set; the scan stopped before its next chunk."""
