"""
Any `pushgw` command on uvloop's event loop: `python -m pushgw.bench.serve_uvloop
serve --config FILE` is `pushgw serve` with uvloop's loop policy set first
(`pushgw bench --loop uvloop` runs the gateway so, to measure the daemon on it).
"""

from __future__ import annotations

import asyncio

import uvloop

from pushgw.cli import main

if __name__ == "__main__":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    main()
