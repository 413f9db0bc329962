"""Which CAMARA SIM Swap release resim speaks: ``RESIM_CAMARA_VERSION=2.1|2.2``.

The setting is read once, by the composition root (``bootstrap.build_camara``),
which puts one :class:`CamaraVersion` in the ``CamaraRuntime``; the routers
take everything version-dependent from it.

==========  ==========================================  =========================================
mode        2.1 (default)                               2.2
==========  ==========================================  =========================================
documents   sim-swap 2.1.0, subscriptions 0.3.0          the r4.1 candidates (sim-swap 2.2.0-rc.3,
            (release r3.3, ``spec/``)                    subscriptions 0.4.0-rc.1); see below
base paths  ``/sim-swap/v2``,                            ``/sim-swap/v2rc3``,
            ``/sim-swap-subscriptions/v0.3``             ``/sim-swap-subscriptions/v0.4rc1``
unknown     ignored (the schemas allow them)             400 INVALID_ARGUMENT at any depth
properties                                               ("Request body strictness")
monitored   the brand's limit                            1..999 days (a longer limit is
Period                                                   reported as 999: still true)
latestSim   RFC 3339, 24 characters                      the same (``maxLength: 64``)
Change
subs 403    PERMISSION_DENIED                            + INVALID_TOKEN_CONTEXT: a 3-legged token
                                                         reading or deleting its client's
                                                         subscription on another number
subs 422    SERVICE_NOT_APPLICABLE for a number          UNSUPPORTED_IDENTIFIER for a number this
            resim does not serve                         operator does not serve (test plan
                                                         creation_100); SERVICE_NOT_APPLICABLE
                                                         for a ceased line
subs list   a JSON array                                 ``{subscriptions, pagination}``, ``page``
                                                         and ``perPage`` (1..100) query params
==========  ==========================================  =========================================

The 2.2 documents: the release-candidate tags were not in the snapshot of
camaraproject/SimSwap available when this was built; ``spec/2.2/SOURCE.txt``
names the commit used instead (the r4.1 work in progress closest to the
candidates) and what it lacks. The base paths are the ones CAMARA's
versioning rules give those candidate versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resim.domain.camara_subscription_request import SubscriptionDialect

SPEC_DIR = Path(__file__).parent / "spec"


@dataclass(frozen=True)
class CamaraVersion:
    mode: str  # "2.1" | "2.2"
    simswap_version: str
    subscriptions_version: str
    simswap_prefix: str
    simswap_spec: Path
    subscriptions_prefix: str
    subscriptions_spec: Path
    strict: bool  # unknown request properties are 400 INVALID_ARGUMENT
    max_monitored_days: int | None  # the schema's maximum for monitoredPeriod
    subscriptions: SubscriptionDialect


V2_1 = CamaraVersion(
    mode="2.1",
    simswap_version="2.1.0",
    subscriptions_version="0.3.0",
    simswap_prefix="/sim-swap/v2",
    simswap_spec=SPEC_DIR / "sim-swap.yaml",
    subscriptions_prefix="/sim-swap-subscriptions/v0.3",
    subscriptions_spec=SPEC_DIR / "sim-swap-subscriptions.yaml",
    strict=False,
    max_monitored_days=None,
    subscriptions=SubscriptionDialect(),
)

V2_2 = CamaraVersion(
    mode="2.2",
    simswap_version="2.2.0-rc.3",
    subscriptions_version="0.4.0-rc.1",
    simswap_prefix="/sim-swap/v2rc3",
    simswap_spec=SPEC_DIR / "2.2" / "sim-swap.yaml",
    subscriptions_prefix="/sim-swap-subscriptions/v0.4rc1",
    subscriptions_spec=SPEC_DIR / "2.2" / "sim-swap-subscriptions.yaml",
    strict=True,
    max_monitored_days=999,
    subscriptions=SubscriptionDialect(
        strict=True, unsupported_identifier=True, token_context=True, paginated=True
    ),
)

VERSIONS = {v.mode: v for v in (V2_1, V2_2)}
