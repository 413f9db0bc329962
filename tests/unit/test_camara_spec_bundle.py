"""The 2.2 documents resim serves are exactly the bundle of the stored sources
(spec/2.2/source/, byte for byte from camaraproject/SimSwap; SOURCE.txt), and
nothing in them points outside the file (issue 15 item 3)."""

from __future__ import annotations

import re

import pytest
import yaml

from resim.entrypoints.camara.bundle import BUNDLES, SPEC_DIR, bundle
from resim.entrypoints.camara.versions import V2_1, V2_2

NAMES = [(v, n) for v, names in BUNDLES.items() for n in names]


@pytest.mark.parametrize(("version", "name"), NAMES)
def test_the_served_file_is_the_bundle_of_the_sources(version: str, name: str) -> None:
    source = SPEC_DIR / version / "source" / "API_definitions" / name
    assert (SPEC_DIR / version / name).read_text(encoding="utf-8") == bundle(source)


@pytest.mark.parametrize(("version", "name"), NAMES)
def test_every_reference_is_inside_the_file(version: str, name: str) -> None:
    text = (SPEC_DIR / version / name).read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    refs = re.findall(r"\$ref: ['\"]?([^'\"\s]+)", text)
    assert refs and all(r.startswith("#/components/") for r in refs)
    for ref in refs:
        _, _, kind, item = ref.split("/")
        assert item in document["components"][kind], ref


def test_the_sources_are_labelled_as_what_they_are() -> None:
    source = (SPEC_DIR / "2.2" / "SOURCE.txt").read_text(encoding="utf-8")
    assert "4fe073d65e928e7b726aee7b1a56dd63f6a8a21d" in source
    assert "2.2.0-rc.3" in source and "0.4.0-rc.1" in source and "wip" in source
    sim_swap = (SPEC_DIR / "2.2" / "source" / "API_definitions" / "sim-swap.yaml").read_text()
    assert "maxLength: 64" in sim_swap and "Request body strictness" in sim_swap


def test_each_mode_names_its_documents_and_paths() -> None:
    assert V2_1.simswap_spec.read_text().count("version: 2.1.0") == 1
    assert (V2_1.simswap_prefix, V2_1.subscriptions_prefix) == (
        "/sim-swap/v2",
        "/sim-swap-subscriptions/v0.3",
    )
    assert V2_2.simswap_spec.parent.name == "2.2" and V2_2.strict
    assert (V2_2.simswap_prefix, V2_2.subscriptions_prefix) == (
        "/sim-swap/v2rc3",
        "/sim-swap-subscriptions/v0.4rc1",
    )
