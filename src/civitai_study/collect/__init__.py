"""The CivitAI collector: polite, resumable crawls of ``/api/v1/images`` and ``/api/v1/models``."""

from .crawler import CollectOptions, RegionClampError, collect

__all__ = ["CollectOptions", "RegionClampError", "collect"]
