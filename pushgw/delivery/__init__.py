"""Delivery: the dispatcher, payload selection, retries, filters, events."""

from __future__ import annotations
