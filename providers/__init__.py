"""Provider adapters (one module per platform) and their loopback mocks."""

from __future__ import annotations
