"""Swagger UI and ReDoc work without internet: resim serves their assets (issue 14.6).

FastAPI's own /docs and /redoc load their JavaScript from a CDN, so on a
network without internet they were blank. The pages must name no outside
host, and the assets they name must answer from resim, cacheable for long.
The browser check (all non-loopback requests blocked) is in
tests/e2e/test_docs_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from resim.adapters.crypto import SecretBox
from resim.adapters.db.migrate import upgrade
from resim.bootstrap import build_api_config, build_context, build_engine, load_secrets
from resim.entrypoints.api.app import build_app
from resim.entrypoints.serving import ServerThread
from resim.settings import Settings

pytestmark = pytest.mark.integration

SECRET_KEYS = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="
PAGES = ("/docs", "/redoc")
URL_ATTRIBUTE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The app as production settings build it (no demo extras), on a migrated SQLite
    database (the pages read none; a presented credential is looked up)."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("docs"),
        secret_keys=SECRET_KEYS,  # type: ignore[arg-type]
    )
    upgrade(settings.effective_database_url, secrets=SecretBox(load_secrets(settings).keys))
    engine = build_engine(settings)
    ctx = build_context(settings, engine=engine)
    server = ServerThread(build_app(ctx, build_api_config(settings))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()
        engine.dispose()


@pytest.fixture(scope="module")
def version(http: httpx.Client) -> str:
    """The assets' version as the page names it (/docs/assets/<version>/...)."""
    found = re.search(r"/docs/assets/([^/\"']+)/", http.get("/docs").text)
    assert found, "the page names no local asset"
    return found.group(1)


def referenced(html: str) -> list[str]:
    return URL_ATTRIBUTE.findall(html)


class TestTheDocsPagesNeedNoInternet:
    @pytest.mark.parametrize("path", PAGES)
    def test_the_page_names_no_outside_host(self, http: httpx.Client, path: str) -> None:
        page = http.get(path)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.text, re.I), page.text
        urls = referenced(page.text)
        assert urls, "the page loads nothing?"
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url

    @pytest.mark.parametrize("path", PAGES)
    def test_the_page_may_load_from_this_server_only(self, http: httpx.Client, path: str) -> None:
        policy = http.get(path).headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["img-src"] == "'self' data:"  # ReDoc's vendor logo stays unasked
        assert directives["connect-src"] == "'self'"

    @pytest.mark.parametrize(
        ("path", "script", "marker"),
        [
            ("/docs", "swagger-ui-bundle.js", "SwaggerUIBundle"),
            ("/redoc", "redoc.standalone.js", "Redoc"),
        ],
    )
    def test_the_scripts_it_names_answer_javascript_cached_for_a_year(
        self, http: httpx.Client, path: str, script: str, marker: str
    ) -> None:
        urls = [u for u in referenced(http.get(path).text) if u.endswith(script)]
        assert len(urls) == 1, referenced(http.get(path).text)
        asset = http.get(urls[0])
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith("text/javascript")
        assert len(asset.content) > 100_000 and marker in asset.text
        cache = asset.headers["cache-control"]
        assert "immutable" in cache and "max-age=31536000" in cache
        assert asset.headers["x-content-type-options"] == "nosniff"

    def test_the_swagger_stylesheet_and_icon_are_served_too(self, http: httpx.Client) -> None:
        local = [u for u in referenced(http.get("/docs").text) if u.startswith("/docs/assets/")]
        assert len(local) == 3  # script, stylesheet, icon
        for url in local:
            assert http.get(url).status_code == 200, url

    def test_the_spec_the_pages_read_is_ours(self, http: httpx.Client) -> None:
        assert "url: '/openapi.json'" in http.get("/docs").text
        assert 'spec-url="/openapi.json"' in http.get("/redoc").text
        assert http.get("/openapi.json").json()["info"]["title"] == "resim"


class TestOnlyTheShippedAssetsAreServed:
    @pytest.mark.parametrize(
        "name",
        [
            "core.py",  # in the package, not an asset
            "__init__.py",
            "..%2Fcore.py",
            "%2e%2e%2f%2e%2e%2fsettings.py",
            "",
        ],
    )
    def test_anything_else_is_404(self, http: httpx.Client, version: str, name: str) -> None:
        answer = http.get(f"/docs/assets/{version}/{name}")
        assert answer.status_code == 404
        assert "text/javascript" not in answer.headers.get("content-type", "")

    def test_another_version_is_404(self, http: httpx.Client, version: str) -> None:
        assert http.get(f"/docs/assets/{version}/swagger-ui-bundle.js").status_code == 200
        assert http.get("/docs/assets/0.0.1/swagger-ui-bundle.js").status_code == 404

    def test_a_bad_credential_is_still_401_on_the_docs(self, http: httpx.Client) -> None:
        # every route resolves a presented credential (access.py): docs are no exception
        answer = http.get("/docs", headers={"Authorization": "Bearer not-a-session"})
        assert answer.status_code == 401
