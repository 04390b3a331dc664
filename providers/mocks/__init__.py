"""Loopback mock platforms: one per provider, speaking its real wire protocol."""

from __future__ import annotations
