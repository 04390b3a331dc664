"""Storage backends behind one `Store` protocol: memory, sqlite, postgres."""

from __future__ import annotations

from pushgw.store.base import NewJob, Page, Store

__all__ = ["NewJob", "Page", "Store"]
