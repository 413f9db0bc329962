"""Check answers and notifications against sim-swap-subscriptions.yaml (the copy in
the package, byte for byte the published file).

OpenAPI 3.0 schemas are JSON Schema draft 4 plus keywords a validator ignores
(``discriminator``, ``example``); ``$ref`` resolves inside the document. A
status the operation does not document fails the check.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import yaml

import resim.entrypoints.camara.subscriptions as camara_subscriptions
from resim.domain.camara_events import SUBSCRIPTION_ENDED, SWAPPED

SPEC_PATH = Path(camara_subscriptions.__file__).parent / "spec" / "sim-swap-subscriptions.yaml"
HTTPS_ONLY = r"^https:\/\/.+$"


class _StringTimes(yaml.SafeLoader):
    """YAML 1.1 reads unquoted ``2025-01-17T13:18:23.682Z`` (in ``example``) as a
    datetime; JSON Schema has no such type, so timestamps stay strings."""


_StringTimes.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@functools.cache
def spec() -> dict[str, Any]:
    text = SPEC_PATH.read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.load(text, Loader=_StringTimes)  # noqa: S506 - SafeLoader
    return loaded


@functools.cache
def _loopback_spec() -> dict[str, Any]:
    """The spec with the sink pattern widened to http://, for loopback sinks in tests
    (RESIM_CAMARA_SINK_ALLOW_HTTP_LOOPBACK); everything else unchanged."""
    relaxed = copy.deepcopy(spec())

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("pattern") == HTTPS_ONLY:
                node["pattern"] = r"^https?:\/\/.+$"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(relaxed)
    return relaxed


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _validate(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    root = {**schema, "components": document["components"]}
    validator = jsonschema_rs.Draft4Validator(root, validate_formats=True)
    errors = [str(e) for e in validator.iter_errors(instance)]
    assert not errors, f"not valid against the spec: {errors[:3]} in {instance!r}"


def check_response(
    method: str, template: str, response: httpx.Response, *, loopback_sink: bool = False
) -> None:
    """Assert ``response`` is documented for ``method template`` and matches its schema."""
    document = _loopback_spec() if loopback_sink else spec()
    operation = document["paths"][template][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{method} {template} answered {status}, which the spec does not document: "
        f"{response.text[:200]}"
    )
    documented = _resolve(document, operation["responses"][status])
    headers = {k.lower() for k in documented.get("headers", {})}
    if "x-correlator" in headers:
        assert "x-correlator" in response.headers, "x-correlator missing"
    content = documented.get("content")
    if not content:
        assert response.content == b"", "a body where the spec has none"
        return
    assert response.headers["content-type"].startswith("application/json")
    _validate(document, content["application/json"]["schema"], response.json())


def check_cloud_event(event: dict[str, Any], *, loopback_sink: bool = False) -> None:
    """Assert a notification body is a valid CloudEvent of the spec, by its type."""
    schema_name = {SWAPPED: "EventSimSwap", SUBSCRIPTION_ENDED: "EventSubscriptionEnded"}[
        event["type"]
    ]
    document = _loopback_spec() if loopback_sink else spec()
    _validate(document, {"$ref": f"#/components/schemas/{schema_name}"}, event)
