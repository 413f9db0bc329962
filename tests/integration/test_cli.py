"""The ``resim`` command line through Typer's runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resim.domain.workflow import TRANSITIONS
from resim.entrypoints.cli import app

pytestmark = pytest.mark.integration
SAMPLES = Path(__file__).resolve().parents[2] / "docs" / "samples"
KEY = "gCuHV2bJ3lqkC9b6V5Rj0bSLKc0tqtZ5V6xnCQ8Y1dA="


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "RESIM_DATABASE_URL": db_url,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_SECRET_KEYS": KEY,
        "RESIM_LOG_LEVEL": "WARNING",
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output + result.stderr


def test_workflow_diagram_is_generated_from_the_table() -> None:
    code, out = run({}, "workflow", "diagram")
    assert code == 0
    assert out.count("-->") == len(TRANSITIONS) + 1 + 5  # start edge, 5 terminal edges
    code, text = run({}, "workflow", "diagram", "--format", "text")
    assert code == 0 and "requested" in text and "-->" not in text
    assert run({}, "workflow", "diagram", "--format", "png")[0] == 2


def test_db_upgrade_is_repeatable(empty_db_url: str, tmp_path: Path) -> None:
    env = {
        "RESIM_DATABASE_URL": empty_db_url,
        "RESIM_DATA_DIR": str(tmp_path),
        "RESIM_SECRET_KEYS": KEY,
    }
    code, out = run(env, "db", "upgrade")
    assert code == 0 and "revision" in out
    assert run(env, "db", "upgrade")[0] == 0


def test_import_samples_then_reimport_changes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "db", "upgrade")[0] == 0
    code, out = run(env, "import", "brands", str(SAMPLES / "brands.toml"))
    assert code == 0, out
    code, out = run(env, "import", "subscribers", str(SAMPLES / "subscribers.csv"), "--dry-run",
                    "--report", str(tmp_path / "r.csv"))  # fmt: skip
    assert code == 0 and "0 written" in out and "3 would be written" in out, out
    for kind, n in (("subscribers", 3), ("sims", 4), ("lines", 3), ("stock", 5)):
        code, out = run(env, "import", kind, str(SAMPLES / f"{kind}.csv"),
                        "--report", str(tmp_path / "r.csv"))  # fmt: skip
        assert code == 0 and f"{n} written" in out, out
    for kind, n in (("subscribers", 3), ("sims", 4), ("lines", 3), ("stock", 5)):
        code, out = run(env, "import", kind, str(SAMPLES / f"{kind}.csv"),
                        "--report", str(tmp_path / "r.csv"))  # fmt: skip
        assert code == 0 and "0 written" in out and f"{n} unchanged" in out, out


def test_bad_rows_are_named_and_exit_non_zero(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "db", "upgrade")[0] == 0
    run(env, "import", "brands", str(SAMPLES / "brands.toml"))
    run(env, "import", "subscribers", str(SAMPLES / "subscribers.csv"))
    run(env, "import", "sims", str(SAMPLES / "sims.csv"))
    bad = tmp_path / "lines.csv"
    shutil.copy(SAMPLES / "lines.csv", bad)
    with bad.open("a") as fh:
        fh.write("+47 1,ACC-1003,polar-no,active,8947993000000000012,\n")
        fh.write("+4741234570,ACC-1003,ghost-brand,active,8947993000000000045,\n")
    code, out = run(env, "import", "lines", str(bad))
    assert code == 1
    assert "line 5: msisdn" in out and "line 5: iccid" in out, out
    assert "line 6: brand_id: rejected: unknown brand" in out
    assert "3 written" in out  # the valid rows still land
    report = (tmp_path / "lines.csv.report.csv").read_text()
    assert "lines,5,msisdn,rejected," in report and "lines,6,brand_id,rejected," in report


def test_one_file_dry_run_points_to_import_all_for_references(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert run(env, "db", "upgrade")[0] == 0
    run(env, "import", "brands", str(SAMPLES / "brands.toml"))
    code, out = run(env, "import", "lines", str(SAMPLES / "lines.csv"), "--dry-run",
                    "--report", str(tmp_path / "r.csv"))  # fmt: skip
    assert code == 1
    assert "no such subscriber (import subscribers first)" in out, out
    assert "refer to a brand, subscriber, SIM or line" in out
    assert "resim import all DIR --dry-run" in out
    together = tmp_path / "files"
    together.mkdir()
    for name in ("brands.toml", "subscribers.csv", "sims.csv", "lines.csv", "sim_changes.csv",
                 "locks.csv", "stock.csv"):  # fmt: skip
        shutil.copy(SAMPLES / name, together / name)
    code, out = run(env, "import", "all", str(together), "--dry-run")
    assert code == 0, out
    assert "lines: 3 read, 0 written" in out and "3 would be written" in out, out
    assert "refer to a brand" not in out


def test_requests_list_and_show(env: dict[str, str]) -> None:
    assert run(env, "db", "upgrade")[0] == 0
    code, out = run(env, "requests", "list")
    assert code == 0 and out.strip() == ""
    code, out = run(env, "requests", "show", "missing")
    assert code == 1 and "REQUEST_NOT_FOUND" in out


def test_invalid_settings_are_reported_without_values(tmp_path: Path) -> None:
    code, out = run(
        {"RESIM_DATABASE_URL": "mysql://user:hunter2@db/x", "RESIM_DATA_DIR": str(tmp_path)},
        "db",
        "upgrade",
    )
    assert code == 2
    assert "RESIM_DATABASE_URL" in out or "database_url" in out
    assert "hunter2" not in out


def test_show_prints_json_for_a_request(env: dict[str, str]) -> None:
    from resim.adapters.db.migrate import upgrade
    from resim.bootstrap import build_context
    from resim.services.replacement import requests
    from resim.settings import Settings

    upgrade(env["RESIM_DATABASE_URL"])
    run(env, "import", "brands", str(SAMPLES / "brands.toml"))
    for kind in ("subscribers", "sims", "lines"):
        assert run(env, "import", kind, str(SAMPLES / f"{kind}.csv"))[0] == 0
    settings = Settings(
        database_url=env["RESIM_DATABASE_URL"],
        data_dir=Path(env["RESIM_DATA_DIR"]),
        secret_keys=KEY,
    )  # type: ignore[arg-type]
    ctx = build_context(settings)
    opened = requests.open_request(ctx, msisdn="+4741234567", reason="damaged")
    code, out = run(env, "requests", "show", opened.id)
    assert code == 0
    view = json.loads(out)
    assert view["state"] == "requested" and view["msisdn"] == "+4741234567"
    assert view["fee"] == {"amount_minor": 0, "currency": "NOK"}
    code, out = run(env, "requests", "list")
    assert view["ref"] in out
