from __future__ import annotations

from pushgw.cli import main

main()
