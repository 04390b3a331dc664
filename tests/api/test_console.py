"""
The console's server side, in-process: the files at /console (cache rules,
security headers, content types) and the endpoint-search route of the JSON API.
The pages themselves run in a real browser: tests/e2e/test_console_e2e.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer

from pushgw.api.app import make_app
from pushgw.api.console import CONSOLE_DIR, IMMUTABLE, assets_digest
from pushgw.config import config_from_mapping
from tests.api.test_json_api import CONFIG, PUBLISH_KEY, Api, assert_error, make_service

SEARCH = "/v1/platform-applications/{}/endpoints/search"


@pytest.fixture(name="api")
async def _api() -> AsyncIterator[Api]:
    service, _store = make_service()
    app = make_app(config=config_from_mapping(CONFIG), service=service)
    async with TestClient(TestServer(app)) as client:
        yield Api(client)


# -- the files ------------------------------------------------------------------
def console_files() -> list[Path]:
    return sorted(p for p in CONSOLE_DIR.rglob("*") if p.is_file())


async def test_console_index_is_revalidated_and_names_hashed_assets(
    api: Api,
) -> None:
    """/console redirects to /console/, whose page is no-cache and loads its
    module and styles from /console/assets/<digest of the files>/."""
    client = api.client
    moved = await client.get("/console", allow_redirects=False)
    assert 308 == moved.status
    assert "/console/" == moved.headers["Location"]

    page = await client.get("/console/")
    html = await page.text()

    assert 200 == page.status
    assert page.content_type == "text/html"
    assert "no-cache" == page.headers["Cache-Control"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    base = f"/console/assets/{assets_digest()}/"
    assert f'src="{base}js/main.js"' in html
    assert f'href="{base}console.css"' in html
    assert "./assets/" not in html


async def test_every_asset_is_served_immutable_with_its_type(api: Api) -> None:
    """Each file under pushgw/console/ is served at the hashed prefix, cached
    for a year, with a JavaScript type for modules (browsers insist)."""
    base = f"/console/assets/{assets_digest()}/"
    types = {
        ".js": {"text/javascript", "application/javascript"},
        ".css": {"text/css"},
        ".html": {"text/html"},
        ".svg": {"image/svg+xml"},
    }
    files = console_files()
    assert len(files) > 5
    for path in files:
        rel = path.relative_to(CONSOLE_DIR).as_posix()
        response = await api.client.get(base + rel)
        assert 200 == response.status, rel
        assert IMMUTABLE == response.headers["Cache-Control"], rel
        assert response.content_type in types[path.suffix], rel
        assert "nosniff" == response.headers["X-Content-Type-Options"]
        assert path.read_bytes() == await response.read()


async def test_other_digests_and_paths_outside_are_not_found(api: Api) -> None:
    """An old release's digest, or a path out of the directory, is a 404."""
    for path in (
        "/console/assets/0000000000000000/js/main.js",
        f"/console/assets/{assets_digest()}/../../api/console.py",
        f"/console/assets/{assets_digest()}/missing.js",
    ):
        response = await api.client.get(path)
        assert 404 == response.status, path


def test_the_console_loads_nothing_from_elsewhere() -> None:
    """No file names another origin (no CDN, fonts or analytics), and modules
    import each other by relative path only. (The SVG namespace is a name, not
    something fetched.)"""
    foreign = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[/"'\s]""", re.I)
    for path in console_files():
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")
        assert not foreign.search(text), (path, foreign.search(text))
        if path.suffix == ".js":
            for spec in re.findall(r"""^import\s[^'"]*['"]([^'"]+)['"]""", text, re.M):
                assert spec.startswith(("./", "../")), (path, spec)


def test_the_console_ships_in_the_wheel() -> None:
    """pyproject's package data covers every console file."""
    text = (CONSOLE_DIR.parents[1] / "pyproject.toml").read_text()
    patterns = re.findall(r'"(console/[^"]+)"', text)
    assert patterns
    root = CONSOLE_DIR.parent
    covered = {p for pattern in patterns for p in root.glob(pattern) if p.is_file()}
    assert set(console_files()) == covered


# -- endpoint search --------------------------------------------------------------
async def test_search_by_token_prefix_and_custom_user_data(api: Api) -> None:
    """tokenPrefix and customUserData narrow an app's endpoints, in token
    order; the answer has the list shape of ListEndpointsByPlatformApplication."""
    app = await api.gcm_app()
    arns = {}
    for token, data in [("tok-b", "alice"), ("tok-a", "bob"), ("other", "alice")]:
        arns[token] = await api.endpoint(app, token, customUserData=data)

    found = await api.ok("GET", SEARCH.format(app), params={"tokenPrefix": "tok-"})
    by_user = await api.ok(
        "GET", SEARCH.format(quote(app, safe="")), params={"customUserData": "alice"}
    )
    both = await api.ok(
        "GET",
        SEARCH.format(app),
        params={"tokenPrefix": "tok", "customUserData": "alice"},
    )
    everything = await api.ok("GET", SEARCH.format(app))

    assert {
        "endpoints": [
            {
                "endpointArn": arns["tok-a"],
                "attributes": {
                    "Enabled": "true",
                    "Token": "tok-a",
                    "CustomUserData": "bob",
                },
            },
            {
                "endpointArn": arns["tok-b"],
                "attributes": {
                    "Enabled": "true",
                    "Token": "tok-b",
                    "CustomUserData": "alice",
                },
            },
        ],
        "nextToken": None,
    } == found
    assert [arns["other"], arns["tok-b"]] == [
        e["endpointArn"] for e in by_user["endpoints"]
    ]
    assert [arns["tok-b"]] == [e["endpointArn"] for e in both["endpoints"]]
    assert ["other", "tok-a", "tok-b"] == [
        e["attributes"]["Token"] for e in everything["endpoints"]
    ]


async def test_search_pages_with_next_token(api: Api) -> None:
    """limit sets the page size; nextToken continues after the last token."""
    app = await api.gcm_app()
    for n in range(7):
        await api.endpoint(app, f"t{n}")
    tokens: list[list[str]] = []
    params = {"limit": "3"}
    while True:
        page = await api.ok("GET", SEARCH.format(app), params=params)
        tokens.append([e["attributes"]["Token"] for e in page["endpoints"]])
        if page["nextToken"] is None:
            break
        params = {"limit": "3", "nextToken": page["nextToken"]}

    assert [["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]] == tokens


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"nextToken": "not-a-token"}, "NextToken"),
        # A ListEndpointsByPlatformApplication NextToken is another kind.
        ({"nextToken": "ZW5kcG9pbnRzOjU="}, "NextToken"),
    ],
)
async def test_search_refuses_bad_parameters(
    api: Api, params: dict[str, str], word: str
) -> None:
    app = await api.gcm_app()
    status, payload = await api.call("GET", SEARCH.format(app), params=params)

    assert word in assert_error(status, payload, 400, "InvalidParameter")


async def test_search_needs_the_listing_right_and_an_existing_app(api: Api) -> None:
    """Same auth as ListEndpointsByPlatformApplication: no key 401, a
    publish-only key 403; an unknown app 404, a malformed ARN 400/404."""
    app = await api.gcm_app()
    missing = app.replace("gcm-app", "nope")

    no_key = await api.call("GET", SEARCH.format(app), key=None)
    publisher = await api.call("GET", SEARCH.format(app), key=PUBLISH_KEY)
    unknown = await api.call("GET", SEARCH.format(missing))

    assert_error(*no_key, 401, "Unauthorized")
    assert "ListEndpointsByPlatformApplication" in assert_error(
        *publisher, 403, "AuthorizationError"
    )
    assert_error(*unknown, 404, "NotFound")
