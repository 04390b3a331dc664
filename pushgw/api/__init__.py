"""HTTP APIs: the SNS Query API (form in, XML out) and the JSON API (/v1)."""

from __future__ import annotations
