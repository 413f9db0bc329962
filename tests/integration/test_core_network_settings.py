"""RESIM_CORE_NETWORK chooses the adapter in the composition root, checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from typer.testing import CliRunner

from resim.adapters.corenet.builtin import BuiltinCoreNetwork
from resim.adapters.corenet.osmo_hlr import OsmoHlrCoreNetwork
from resim.adapters.corenet.pyhss import PyHssCoreNetwork
from resim.bootstrap import build_core_network, core_network_problem
from resim.entrypoints.cli import CORE_NETWORKS, DEMO_CORE_NETWORKS, app
from resim.errors import ConfigurationError
from resim.settings import Settings

pytestmark = pytest.mark.integration


def run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    base = {"RESIM_DATA_DIR": str(tmp_path), "RESIM_LOG_LEVEL": "WARNING"}
    result = CliRunner().invoke(app, list(args), env={**base, **env})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output + result.stderr


class TestTheSetting:
    def test_the_builtin_core_is_the_default(self, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path)
        assert settings.core_network == "builtin"
        engine = sa.create_engine("sqlite://")
        assert isinstance(build_core_network(settings, engine), BuiltinCoreNetwork)

    def test_osmo_hlr_is_built_with_its_addresses(self) -> None:
        settings = Settings(
            core_network="osmo-hlr",
            osmo_hlr_ctrl_host="127.0.0.9",
            osmo_hlr_ctrl_port=14259,
            osmo_hlr_vty_port=14258,
        )
        core = build_core_network(settings, sa.create_engine("sqlite://"))
        assert isinstance(core, OsmoHlrCoreNetwork)
        assert core._ctrl._addr == ("127.0.0.9", 14259)
        assert core._vty._addr == ("127.0.0.9", 14258)  # the VTY host defaults to CTRL's
        core.close()

    def test_osmo_hlr_without_an_address_is_refused_by_name(self) -> None:
        settings = Settings(core_network="osmo-hlr")
        assert "RESIM_OSMO_HLR_CTRL_HOST" in (core_network_problem(settings) or "")
        with pytest.raises(ConfigurationError) as info:
            build_core_network(settings, sa.create_engine("sqlite://"))
        assert info.value.code == "CORE_NETWORK_SETTINGS"

    @pytest.mark.parametrize(
        "values",
        [
            {"core_network": "open5gs"},
            {"core_network": "pyhss", "pyhss_url": "hss:8080"},
            {"pyhss_url": "ftp://hss"},
            {"pyhss_apn_list": "1;2"},
            {"pyhss_default_apn": 0},
            {"core_network": "Osmo-HLR"},
            {"osmo_hlr_ctrl_host": "127.0.0.1:4259"},
            {"osmo_hlr_vty_host": "telnet://hlr"},
            {"osmo_hlr_ctrl_port": 0},
            {"osmo_hlr_vty_port": 70000},
            {"osmo_hlr_timeout_seconds": 0},
        ],
    )
    def test_malformed_values_are_refused(self, values: dict[str, object]) -> None:
        with pytest.raises(ValidationError):
            Settings(**values)  # type: ignore[arg-type]

    def test_the_setting_takes_three_and_the_demo_runs_on_two(self) -> None:
        assert CORE_NETWORKS == ["builtin", "osmo-hlr", "pyhss"]
        assert DEMO_CORE_NETWORKS == ["builtin", "osmo-hlr"]

    def test_pyhss_is_built_with_its_url_and_key(self) -> None:
        settings = Settings(
            core_network="pyhss",
            pyhss_url="http://127.0.0.9:18080/",
            pyhss_provisioning_key="k3y",  # type: ignore[arg-type]
            pyhss_apn_list="1,2",
        )
        core = build_core_network(settings, sa.create_engine("sqlite://"))
        assert isinstance(core, PyHssCoreNetwork)
        assert str(core._api._http.base_url) == "http://127.0.0.9:18080"
        assert core._api._http.headers["Provisioning-Key"] == "k3y"
        assert core._settings.apn_list == "1,2"
        core.close()

    def test_pyhss_without_a_url_is_refused_by_name(self) -> None:
        settings = Settings(core_network="pyhss")
        assert "RESIM_PYHSS_URL" in (core_network_problem(settings) or "")
        assert "k3y" not in repr(Settings(pyhss_provisioning_key="k3y"))  # type: ignore[arg-type]


class TestStartUp:
    @pytest.mark.parametrize("command", [("worker",), ("serve",), ("requests", "list")])
    def test_osmo_hlr_without_an_address_stops_every_process_with_one_line(
        self, tmp_path: Path, command: tuple[str, ...]
    ) -> None:
        code, out = run(tmp_path, *command, RESIM_CORE_NETWORK="osmo-hlr")
        assert code == 2
        # (the runner shows stderr twice: once in output, once on its own)
        assert set(out.strip().splitlines()) == {
            "error: invalid settings: RESIM_CORE_NETWORK=osmo-hlr needs RESIM_OSMO_HLR_CTRL_HOST"
            " (the HLR's CTRL address; RESIM_OSMO_HLR_VTY_HOST defaults to it)"
        }

    def test_an_unknown_core_network_names_the_choices(self, tmp_path: Path) -> None:
        code, out = run(tmp_path, "worker", RESIM_CORE_NETWORK="open5gs")
        assert code == 2
        assert "RESIM_CORE_NETWORK" in out and "'builtin', 'osmo-hlr' or 'pyhss'" in out

    def test_the_demo_refuses_an_unknown_core_network(self, tmp_path: Path) -> None:
        code, out = run(tmp_path, "demo", "--core-network", "open5gs")
        assert code == 2
        assert "--core-network is builtin or osmo-hlr" in out


def test_the_demo_refuses_pyhss_with_one_line(tmp_path: Path) -> None:
    code, out = run(tmp_path, "demo", "--core-network", "pyhss")
    assert code == 2 and "--core-network is builtin or osmo-hlr" in out
    code, out = run(tmp_path, "demo", RESIM_CORE_NETWORK="pyhss", RESIM_PYHSS_URL="http://h:1")
    assert code == 2 and "the demo runs on builtin or osmo-hlr" in out
