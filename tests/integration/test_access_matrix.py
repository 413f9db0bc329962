"""Every route x every kind of caller, over real HTTP (issue 3, point 1; SEC-08, SEC-10).

1. Every route of the app declares its callers (``access.allow`` or
   ``access.declared``); a route without a declaration fails the test. Only
   FastAPI's own documentation routes are exempt (listed below).
2. The routes this team owns declare exactly the matrix below, so a widened
   rule is caught in review.
3. Every route is called by: nobody, a customer session (for the request in
   the path and for another one), an agent, a reviewer, an admin, and one
   machine client per scope. Not allowed: 401 for nobody, 403 for the rest (a
   customer asking about someone else's request: 404, existence not revealed).
   Allowed: anything but 401/403. (Routes open to anyone answer a customer
   session as they answer anybody.) The SM-DP+ callback ("smdp") and the
   CAMARA API ("camara", JWT access tokens: tests/integration/test_camara_*.py)
   take none of these credentials: 401 for every one of them; nor does
   ``/metrics`` ("metrics": the scraper's RESIM_METRICS_TOKEN, set here).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from identity_support import bearer, client_key, staff_session
from tenancy_support import OTHER, OWN, add_other_brand, brand_callers, brand_objects, snapshot
from test_replacement_flow import System, add_line
from test_replacement_flow import system as system

from resim.entrypoints.api.access import SCOPES, Principal, access_rules, allow
from resim.entrypoints.api.app import ApiConfig, build_app
from resim.entrypoints.serving import ServerThread
from resim.services.replacement import separation

pytestmark = pytest.mark.integration

LOGOUTS = {"/console/logout": 1, "/v1/auth/logout": 2}
EXEMPT = {"/openapi.json"}
READERS = {"agent", "reviewer", "admin", "client:requests:read"}
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("POST", "/v1/requests"): {"anyone"},
    ("GET", "/v1/requests"): READERS,
    ("GET", "/v1/requests/{request_id}"): {"customer", *READERS},
    ("POST", "/v1/requests/{request_id}/verification"): {"anyone"},
    ("POST", "/v1/requests/{request_id}/code"): {"anyone"},
    ("POST", "/v1/requests/{request_id}/cancel"): {"customer", "agent", "client:requests:write"},
    ("POST", "/v1/requests/{request_id}/reissue"): {"customer", "agent", "client:requests:write"},
    ("POST", "/v1/requests/{request_id}/review"): {"reviewer"},
    ("GET", "/v1/requests/{request_id}/activation"): {
        "customer",
        "agent",
        "client:activation:read",
    },
    ("GET", "/v1/requests/{request_id}/activation/qr.{fmt}"): {
        "customer",
        "agent",
        "client:activation:read",
    },
    ("GET", "/v1/sim-changes"): {"reviewer", "admin", "client:sim-changes:read"},
    ("POST", "/v1/auth/staff/login"): {"anyone"},
    ("POST", "/v1/auth/logout"): {"customer", "agent", "reviewer", "admin"},
    ("GET", "/v1/lines/{msisdn}"): {"agent"},
    ("POST", "/v1/lines/{msisdn}/network-refresh"): {"agent", "client:lines:refresh"},
    ("GET", "/v1/lines/{msisdn}/network-refresh"): {"agent", "client:lines:refresh"},
    ("POST", "/v1/identity-checks"): {"agent"},
    ("GET", "/v1/lines/{msisdn}/loss-report"): {"agent", "client:lines:loss"},
    ("POST", "/v1/lines/{msisdn}/loss-report"): {"agent", "client:lines:loss"},
    ("POST", "/v1/lines/{msisdn}/loss-report/code"): {"agent", "client:lines:loss"},
    ("POST", "/v1/lines/{msisdn}/loss-report/lift"): {"agent", "client:lines:loss"},
    ("GET", "/health"): {"anyone"},
    ("GET", "/ready"): {"anyone"},
    ("GET", "/metrics"): {"metrics"},
    ("POST", "/gsma/rsp2/es2plus/handleDownloadProgressInfo"): {"smdp"},
    ("GET", "/status/{request_id}"): {"anyone"},
    # The portal's pages are open; the eSIM and the session-only buttons check
    # the customer session cookie of that request themselves (web/portal_status.py).
    ("GET", "/portal"): {"anyone"},
    ("POST", "/portal/start"): {"anyone"},
    ("POST", "/portal/requests"): {"anyone"},
    ("GET", "/portal/sent"): {"anyone"},
    ("GET", "/portal/brand/{brand_id}/logo.svg"): {"anyone"},
    ("GET", "/portal/brand/{brand_id}/style.css"): {"anyone"},
    ("POST", "/portal/language"): {"anyone"},
    ("GET", "/portal/requests/{request_id}"): {"anyone"},
    ("GET", "/portal/requests/{request_id}/verify"): {"anyone"},
    ("POST", "/portal/requests/{request_id}/verify"): {"anyone"},
    ("GET", "/portal/requests/{request_id}/status.json"): {"anyone"},
    ("POST", "/portal/requests/{request_id}/reissue"): {"anyone"},
    ("POST", "/portal/requests/{request_id}/installed"): {"anyone"},
    ("POST", "/portal/requests/{request_id}/cancel"): {"anyone"},
    ("POST", "/portal/requests/{request_id}/reconfirm/code"): {"anyone"},
    ("POST", "/portal/requests/{request_id}/reconfirm"): {"anyone"},
    ("POST", "/portal/requests/{request_id}/activate"): {"anyone"},
    ("GET", "/portal/lost"): {"anyone"},
    ("POST", "/portal/lost"): {"anyone"},
    ("POST", "/portal/lost/code"): {"anyone"},
    ("GET", "/portal/lost/sent"): {"anyone"},
    ("GET", "/portal/lost/{line_id}"): {"anyone"},
    ("POST", "/portal/lost/{line_id}"): {"anyone"},
    ("POST", "/portal/lost/{line_id}/code"): {"anyone"},
    ("POST", "/portal/lost/{line_id}/found"): {"anyone"},
    ("GET", "/static/{name}"): {"anyone"},
    ("GET", "/not-me/{token}"): {"anyone"},
    ("POST", "/not-me/{token}"): {"anyone"},
    # Issue 12: post/redirect/get pages and the signed continue link (web/portal_continue.py)
    ("GET", "/portal/choose"): {"anyone"},
    ("GET", "/portal/requests/{request_id}/reconfirm"): {"anyone"},
    ("GET", "/portal/not-me/done"): {"anyone"},
    ("GET", "/c/{token}"): {"anyone"},
    # the agent console (pages; same rules as the API routes they stand for)
    ("GET", "/console/login"): {"anyone"},
    ("POST", "/console/login"): {"anyone"},
    ("POST", "/console/logout"): {"agent", "reviewer", "admin"},
    ("GET", "/console"): {"agent", "reviewer", "admin"},
    ("GET", "/console/lines"): {"agent", "reviewer"},
    ("POST", "/console/lines/{msisdn}/identity-check"): {"agent"},
    ("POST", "/console/lines/{msisdn}/requests"): {"agent"},
    ("POST", "/console/lines/{msisdn}/loss-report"): {"agent"},
    ("POST", "/console/lines/{msisdn}/loss-report/lift"): {"agent"},
    ("GET", "/console/requests/{request_id}"): {"agent", "reviewer", "admin"},
    ("POST", "/console/requests/{request_id}/review"): {"reviewer"},
    ("POST", "/console/requests/{request_id}/handover"): {"agent"},
    # issue 14: the counter's hand-over page and its receipt
    ("GET", "/console/requests/{request_id}/handover"): {"agent"},
    ("GET", "/console/requests/{request_id}/receipt"): {"agent", "reviewer", "admin"},
    ("GET", "/console/queue"): {"reviewer"},
    ("GET", "/console/requests/{request_id}/audit"): {"reviewer", "admin"},
    ("GET", "/console/dashboard"): {"reviewer", "admin"},
    ("GET", "/console/dashboard/requests"): {"reviewer", "admin"},
    ("GET", "/console/dashboard.csv"): {"reviewer", "admin"},
    # issue 12: agents and the fraud team act
    ("POST", "/console/requests/{request_id}/take-over"): {"agent"},
    ("POST", "/console/requests/{request_id}/cancel"): {"agent"},
    ("GET", "/console/requests/{request_id}/screen"): {"agent"},
    ("POST", "/console/lines/{msisdn}/unfreeze"): {"reviewer"},
    ("GET", "/console/alerts"): {"reviewer", "admin"},
    ("POST", "/v1/requests/{request_id}/take-over"): {"agent"},
    ("POST", "/v1/lines/{msisdn}/unfreeze"): {"reviewer"},
    ("GET", "/v1/alerts"): {"reviewer", "admin"},
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): {"reviewer", "admin"},
    ("POST", "/console/alerts/{alert_id}/acknowledge"): {"reviewer", "admin"},
    ("POST", "/sim-swap/v2/check"): {"camara"},
    ("POST", "/sim-swap/v2/retrieve-date"): {"camara"},
    ("GET", "/sim-swap/v2/openapi.yaml"): {"anyone"},
    ("GET", "/.well-known/jwks.json"): {"anyone"},
    # issue 14.6: the API docs with their assets served by resim itself
    ("GET", "/docs"): {"anyone"},
    ("GET", "/docs/oauth2-redirect"): {"anyone"},
    ("GET", "/redoc"): {"anyone"},
    ("GET", "/docs/assets/{version}/{name}"): {"anyone"},
}


def all_routes(app: FastAPI) -> list[Any]:
    """The app's routes with the dependencies of the routers they were included with.

    FastAPI >= 0.16x keeps included routers as ``_IncludedRouter`` entries in
    ``app.routes``; ``iter_route_contexts`` flattens them (router-level
    dependencies included). Older versions list the routes themselves.
    """
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(flatten(app.routes)) if flatten else list(app.routes)


def undeclared_routes(app: FastAPI) -> list[str]:
    """Routes that name no callers (FastAPI's documentation routes excepted)."""
    missing = []
    for route in all_routes(app):
        path = getattr(route, "path", None) or repr(route)
        if path in EXEMPT:
            continue
        if access_rules(route) is None:
            missing.append(path)
    return missing


def endpoints(app: FastAPI) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    for route in all_routes(app):
        if route.path in EXEMPT:
            continue
        rules = access_rules(route)
        assert rules is not None
        for method in sorted(set(route.methods) - {"HEAD"}):
            yield method, route.path, rules


class TestEveryRouteDeclaresItsCallers:
    def test_an_undeclared_route_is_found(self) -> None:
        app = FastAPI(docs_url=None, redoc_url=None)  # as build_app: its docs declare callers

        @app.get("/open")
        def open_route() -> None: ...

        @app.get("/closed", dependencies=[allow("admin")])
        def closed_route() -> None: ...

        assert undeclared_routes(app) == ["/open"]

    def test_the_app_declares_every_route_and_ours_as_in_the_matrix(self, system: System) -> None:
        app = build_app(system.ctx, ApiConfig(mail_capture_dir=None))
        assert undeclared_routes(app) == []
        declared = {(m, p): set(rules) for m, p, rules in endpoints(app)}
        assert len(declared) >= len(EXPECTED)
        for key, rules in EXPECTED.items():
            assert declared.get(key) == rules, key


def _fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path.replace("{", "").replace("}", "")


def test_every_route_with_every_caller(system: System) -> None:
    own_msisdn, own_email, _, _ = add_line(system, 800)
    other_msisdn, other_email, _, _ = add_line(system, 801)
    server = ServerThread(build_app(system.ctx, ApiConfig(metrics_token="scraper-only"))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            sessions: dict[str, str] = {}
            opener = bearer(client_key(system.ctx, "requests:write"))  # the operator's app
            for msisdn, email in ((own_msisdn, own_email), (other_msisdn, other_email)):
                created = http.post(
                    "/v1/requests", json={"msisdn": msisdn, "reason": "damaged"}, headers=opener
                )
                assert created.status_code == 201, created.text
                rid = created.json()["id"]
                system.run_jobs()
                verified = http.post(
                    f"/v1/requests/{rid}/verification", json={"otp": system.code_for(email)}
                )
                assert verified.status_code == 200, verified.text
                sessions[rid] = verified.json()["session_token"]
            own_rid, other_rid = list(sessions)
            agent = staff_session(system.ctx, "agent")
            checked = http.post(
                "/v1/identity-checks",
                json={"msisdn": own_msisdn, "document_type": "passport", "last_digits": "1234"},
                headers=bearer(agent),
            )
            assert checked.status_code == 201, checked.text
            callers: dict[str, tuple[Principal, dict[str, str]]] = {
                "anonymous": (Principal(kind="anonymous"), {}),
                "customer": (
                    Principal(kind="customer", request_id=own_rid),
                    bearer(sessions[own_rid]),
                ),
                "other-customer": (
                    Principal(kind="customer", request_id=other_rid),
                    bearer(sessions[other_rid]),
                ),
                "agent": (Principal(kind="staff", role="agent"), bearer(agent)),
                **{
                    role: (
                        Principal(kind="staff", role=role),
                        bearer(staff_session(system.ctx, role)),
                    )
                    for role in ("reviewer", "admin")
                },
                **{
                    f"client:{scope}": (
                        Principal(kind="client", scopes=frozenset({scope})),
                        bearer(client_key(system.ctx, scope)),
                    )
                    for scope in SCOPES
                },
            }
            values = {"request_id": own_rid, "msisdn": own_msisdn, "fmt": "png", "token": "x"}
            app = build_app(system.ctx, ApiConfig())
            # logouts last (the API's very last): it ends the caller's session
            routes = sorted(endpoints(app), key=lambda e: LOGOUTS.get(e[1], 0))
            wrong: list[str] = []
            for method, path, rules in routes:
                url = _fill(path, values)
                body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
                for name, (principal, headers) in callers.items():
                    status = http.request(method, url, json=body, headers=headers).status_code
                    allowed = any(principal.satisfies(rule) for rule in rules)
                    if "smdp" in rules or "camara" in rules or "metrics" in rules:
                        # the SM-DP+ callback token, CAMARA JWTs and the scraper's
                        # token (RESIM_METRICS_TOKEN) are none of these
                        expected = "401"
                        ok = status == 401
                    elif not allowed:
                        expected = "401" if principal.kind == "anonymous" else "403"
                        ok = status == int(expected)
                    elif (
                        name == "other-customer" and "customer" in rules and "{request_id}" in path
                    ):
                        expected = "404"
                        ok = status == 404
                    else:
                        expected = "not 401/403"
                        ok = status not in (401, 403)
                    if not ok:
                        wrong.append(f"{method} {path} as {name}: {status}, expected {expected}")
            assert wrong == [], "\n".join(wrong)
    finally:
        server.stop()


# --- Tenancy: a second brand (DESIGN.md, "Tenancy"; issue 13, finding 1) ---------------
#
# Every route is one of: it names one line or request (in its path, its query or
# its body), it lists them, or it holds no brand's objects. A new route must be
# put in one of these, so the test below covers it.

# Routes naming no brand's object, or answering as to anybody: the customer's
# pages read their own cookie session and no staff or client credential.
NO_BRAND_OBJECT = {
    ("POST", "/v1/auth/staff/login"),
    ("POST", "/v1/auth/logout"),
    ("GET", "/v1/auth/me"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/static/{name}"),
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    ("POST", "/console/logout"),
    ("GET", "/console"),
    ("GET", "/sim-swap/v2/openapi.yaml"),
    ("GET", "/sim-swap-subscriptions/v0.3/openapi.yaml"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/not-me/{token}"),
    ("POST", "/not-me/{token}"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/docs/assets/{version}/{name}"),
    ("GET", "/c/{token}"),  # signed link: leads to a fresh verification, names no brand
}
CUSTOMER_PAGES = ("/portal", "/status/")
LISTS = {
    ("GET", "/v1/requests"),
    ("GET", "/v1/sim-changes"),
    ("GET", "/console/queue"),
    ("GET", "/console/dashboard"),
    ("GET", "/console/dashboard/requests"),
    ("GET", "/console/dashboard.csv"),
}
# Alerts: tested for tenancy in test_agents_routes.py and test_agents_act.py
# (alerts name a subscriber, a request or a staff member, not a brand).
ALERT_LISTS = {
    ("GET", "/v1/alerts"),
    ("GET", "/console/alerts"),
    ("POST", "/v1/alerts/{alert_id}/acknowledge"),
    ("POST", "/console/alerts/{alert_id}/acknowledge"),
}
# Routes naming a line outside their path, and the bodies that make each call reach
# the service (a body the schema refuses would answer 422 before any look-up).
NAMED_IN_QUERY_OR_BODY = {
    ("POST", "/v1/requests"),
    ("POST", "/v1/identity-checks"),
    ("GET", "/console/lines"),
}


def _call_of(method: str, path: str, target: Any) -> tuple[str, dict[str, Any]]:
    """The URL and body of a call on ``target``'s objects (a BrandObjects)."""
    msisdn, rid = target.msisdn, target.requested
    url = _fill(path, {"request_id": rid, "msisdn": msisdn, "fmt": "png"})
    console_forms: dict[str, dict[str, str]] = {
        "/console/lines/{msisdn}/identity-check": {
            "document_type": "passport",
            "last_digits": "1234",
        },
        "/console/lines/{msisdn}/requests": {"reason": "lost", "target_form": "esim"},
        "/console/lines/{msisdn}/loss-report": {"reason": "lost"},
        "/console/requests/{request_id}/review": {"decision": "approve"},
        "/console/requests/{request_id}/handover": {"iccid": "89450100000000000001"},
        "/console/lines/{msisdn}/unfreeze": {"reason": "checked with the customer"},
    }
    bodies: dict[str, dict[str, Any]] = {
        "/v1/requests": {"msisdn": msisdn, "reason": "damaged"},
        "/v1/identity-checks": {
            "msisdn": msisdn,
            "document_type": "passport",
            "last_digits": "1234",
        },
        "/v1/requests/{request_id}/review": {"decision": "approve"},
        "/v1/requests/{request_id}/verification": {"otp": "000000"},
        "/v1/lines/{msisdn}/loss-report": {"reason": "lost"},
        "/v1/lines/{msisdn}/unfreeze": {"reason": "checked with the customer"},
        "/v1/lines/{msisdn}/separation": {
            "name": "Survivor",
            "email": "survivor@example.test",
            "language": "en",
            "reason_code": separation.REASON_CODES[0],
        },
    }
    if path == "/console/lines":
        return f"{url}?msisdn={quote(msisdn)}", {}
    if path in console_forms:
        return url, {"data": console_forms[path]}
    if method == "GET":
        return url, {}
    return url, {"json": bodies.get(path, {})}


def test_a_brand_reaches_only_its_own_lines_and_requests(system: System) -> None:
    """Staff of every role and a client of every scope, limited to one brand: another
    brand's line or request is 404 on every route that names one, and nothing of it
    changes; their own brand's answers as before (not 401/403/404)."""
    add_other_brand(system)
    own = brand_objects(system, OWN, 1)
    other = brand_objects(system, OTHER, 1)
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            foreign = brand_callers(system, OTHER)
            mine = brand_callers(system, OWN)
            checked = http.post(
                "/v1/identity-checks",
                json={"msisdn": own.msisdn, "document_type": "passport", "last_digits": "1234"},
                headers=mine["agent"][1],
            )
            assert checked.status_code == 201, checked.text
            app = build_app(system.ctx, ApiConfig())
            object_routes: list[tuple[str, str, tuple[str, ...]]] = []
            for method, path, rules in endpoints(app):
                key = (method, path)
                if "smdp" in rules or "camara" in rules:
                    continue  # neither staff nor clients: tests/integration/test_camara_*.py
                if key in NO_BRAND_OBJECT or key in LISTS or key in ALERT_LISTS:
                    continue
                if path.startswith(CUSTOMER_PAGES):
                    continue
                names_one = "{request_id}" in path or "{msisdn}" in path
                assert names_one or key in NAMED_IN_QUERY_OR_BODY, (
                    f"{method} {path}: say in test_access_matrix.py whether it names a "
                    "brand's object, lists them, or holds none"
                )
                object_routes.append((method, path, rules))
            assert len(object_routes) >= 24

            before = snapshot(system)
            wrong: list[str] = []
            for method, path, rules in object_routes:
                url, body = _call_of(method, path, own)
                for name, (principal, headers) in foreign.items():
                    status = http.request(method, url, headers=headers, **body).status_code
                    allowed = any(principal.satisfies(rule) for rule in rules)
                    expected = 404 if allowed else 403
                    if status != expected:
                        wrong.append(f"{method} {path} as {OTHER} {name}: {status}, not {expected}")
            assert wrong == [], "\n".join(wrong)
            assert snapshot(system) == before  # another brand changed nothing

            for method, path, rules in object_routes:
                url, body = _call_of(method, path, own)
                for name, (principal, headers) in mine.items():
                    if not any(principal.satisfies(rule) for rule in rules):
                        continue
                    status = http.request(method, url, headers=headers, **body).status_code
                    if status in (401, 403, 404):
                        wrong.append(f"{method} {path} as {OWN} {name}: {status}")
            assert wrong == [], "\n".join(wrong)
            assert other.requested  # the second brand's own objects: see the lists test
    finally:
        server.stop()


def _listed(http: httpx.Client, method: str, path: str, headers: dict[str, str]) -> Any:
    """What a list route shows the caller: request ids (API, queue) or the dashboard's totals."""
    if path == "/v1/requests":
        everything = http.get("/v1/requests?limit=500", headers=headers)
        held = http.get("/v1/requests?state=in_review&limit=500", headers=headers)
        assert everything.status_code == held.status_code == 200, everything.text
        return {r["id"] for r in everything.json()}, {r["id"] for r in held.json()}
    if path == "/v1/sim-changes":
        listed = http.get("/v1/sim-changes?limit=500", headers=headers)
        assert listed.status_code == 200, listed.text
        return {r["request_id"] for r in listed.json()}
    if path == "/console/dashboard/requests":
        page = http.get(f"{path}?metric=held", headers=headers)
        assert page.status_code == 200, page.text
        return set(re.findall(r'href="/console/requests/([^"]+)"', page.text))
    page = http.get(path, headers=headers)
    assert page.status_code == 200, page.text
    if path == "/console/dashboard.csv":
        rows = [r for r in csv.DictReader(io.StringIO(page.text)) if r["section"] == "day"]
        return sum(int(r["held"]) for r in rows), sum(int(r["replacements"]) for r in rows)
    if path == "/console/queue":
        return set(re.findall(r'href="/console/requests/([^"]+)"', page.text))
    found = re.search(r'id="total-held">(\d+)<', page.text)
    done = re.search(r'id="total-replacements">(\d+)<', page.text)
    assert found and done
    return int(found.group(1)), int(done.group(1))


def _expected_list(path: str, brands: list[Any]) -> Any:
    ids = set().union(*(b.request_ids for b in brands))
    if path == "/v1/requests":
        return ids, {b.held for b in brands}
    if path == "/v1/sim-changes":
        return {b.completed for b in brands}
    if path in ("/console/queue", "/console/dashboard/requests"):
        return {b.held for b in brands}
    return len(brands), len(brands)  # one held and one completed request per brand


def test_lists_hold_the_callers_brand_only(system: System) -> None:
    """Request lists, the review queue, SIM changes and the dashboard's figures of a
    brand's staff and clients hold their brand's requests; operator-wide ones all."""
    add_other_brand(system)
    own = brand_objects(system, OWN, 1)
    other = brand_objects(system, OTHER, 1)
    server = ServerThread(build_app(system.ctx, ApiConfig())).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            app = build_app(system.ctx, ApiConfig())
            rules_of = {(m, p): rules for m, p, rules in endpoints(app)}
            wrong: list[str] = []
            for brand_id, sees in ((OWN, [own]), (OTHER, [other]), (None, [own, other])):
                for name, (principal, headers) in brand_callers(system, brand_id).items():
                    for method, path in sorted(LISTS):
                        if not any(principal.satisfies(r) for r in rules_of[(method, path)]):
                            continue
                        shown = _listed(http, method, path, headers)
                        if shown != _expected_list(path, sees):
                            wrong.append(f"{path} as {brand_id} {name}: {shown}")
                    if principal.satisfies("client:sim-changes:read"):
                        # naming another brand's number finds nothing either
                        for b in (own, other):
                            found = http.get(
                                "/v1/sim-changes",
                                params={"msisdn": b.completed_msisdn},
                                headers=headers,
                            ).json()
                            visible = brand_id in (None, b.brand_id)
                            if [r["request_id"] for r in found] != ([b.completed] * visible):
                                wrong.append(f"sim-changes of {b.brand_id} as {brand_id}: {found}")
            assert wrong == [], "\n".join(wrong)
    finally:
        server.stop()
