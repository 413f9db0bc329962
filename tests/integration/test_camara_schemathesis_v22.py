"""Schemathesis against the 2.2 document (spec/2.2/sim-swap.yaml), in
RESIM_CAMARA_VERSION=2.2, over real HTTP: the same checks, cases and seeded
lines as tests/integration/test_camara_schemathesis.py (issue 15 item 3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from test_camara_schemathesis import Served, call_and_check, serve_app

from resim.entrypoints.camara.versions import V2_2

pytestmark = pytest.mark.integration

schema = schemathesis.openapi.from_path(str(V2_2.simswap_spec))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve_app(tmp_path_factory.mktemp("camara-schemathesis-22"), V2_2)


@schema.parametrize()
@settings(
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_response_is_as_documented_in_2_2(case: Any, served: Served) -> None:
    call_and_check(case, served)
