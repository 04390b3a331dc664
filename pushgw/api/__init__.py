"""HTTP APIs: the SNS Query API (form in, XML out) and the JSON API (/v1)."""

from __future__ import annotations

from aiohttp import web

# Where a binding puts the request's action (the SNS action or JSON operation
# name) once the request is parsed and authenticated: the metrics middleware
# (api/app.py) labels the request with it, "unknown" when it is not set.
ACTION_KEY = web.RequestKey("pushgw.action", str)
