"""Reading a daemon's /metrics in tests, with prometheus_client's own parser."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Server


@dataclass(frozen=True, slots=True)
class Scrape:
    """One exposition: its text, families by name, samples by name."""

    text: str
    types: dict[str, str]  # family name -> type
    samples: list[tuple[str, dict[str, str], float]]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        return sum(v for n, ls, v in self.samples if n == name and _matches(ls, labels))

    def has(self, name: str, **labels: str) -> bool:
        return any(n == name and _matches(ls, labels) for n, ls, _ in self.samples)

    def series(self, name: str) -> list[dict[str, str]]:
        return [ls for n, ls, _ in self.samples if n == name]


def parse(text: str) -> Scrape:
    types: dict[str, str] = {}
    samples: list[tuple[str, dict[str, str], float]] = []
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples.append((sample.name, dict(sample.labels), sample.value))
    return Scrape(text, types, samples)


def scrape(server: Server) -> Scrape:
    r = httpx.get(server.url + "/metrics", timeout=10.0, verify=server.verify)
    r.raise_for_status()
    return parse(r.text)


def _matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


# -- the metrics a PromQL expression names (the Grafana dashboard's) -------------------
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
    | {"and", "or", "unless", "offset", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
)
_WORD = re.compile(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not
    functions or aggregations (followed by "("), keywords, label names inside
    {...} or by (...), durations in [...], strings or Grafana $variables."""
    expr = _STRING.sub('""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = _GROUPING.sub("", expr)
    names = set()
    for match in _WORD.finditer(expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue
        if match.group().lower() not in _KEYWORDS:
            names.add(match.group())
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every `expr` of every panel (rows' nested panels too), and the metrics
    the template variables' label_values() read, as selectors."""
    exprs: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            exprs.extend(t["expr"] for t in panel.get("targets", []) if "expr" in t)
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        found = re.match(r"label_values\((.*),\s*\w+\)$", text)
        if found:
            exprs.append(found.group(1))
    return exprs
