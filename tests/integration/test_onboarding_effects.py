"""A lines batch's core-network bindings commit before the batch, beside it on PostgreSQL.

``passes.write_batch`` runs a kind's ``before_write`` (the core network's
bindings) on a second thread while the batch is written when the store takes
two writers at once (PostgreSQL); on SQLite it runs first, on this thread.
Either way the batch commits only after the bindings did, and an error in
the bindings rolls the batch back: the core is never behind resim.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_onboarding_pipeline import KEY, SAMPLES, files

from resim.adapters.corenet.builtin import BuiltinCoreNetwork
from resim.adapters.corenet.schema import corenet_subscriber
from resim.adapters.db import orm
from resim.adapters.db.migrate import upgrade
from resim.bootstrap import build_context, build_engine
from resim.services.context import ServiceContext
from resim.services.onboarding import import_file

pytestmark = pytest.mark.integration


class FlakyCore(BuiltinCoreNetwork):
    """The built-in core network, noting the threads it binds on; ``fail_at`` fails a call."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine)
        self.threads: list[str] = []
        self.fail_at: int | None = None

    def bind_many(self, bindings: Sequence[tuple[str, str, bool]]) -> None:
        self.threads.append(threading.current_thread().name)
        if self.fail_at is not None and len(self.threads) == self.fail_at:
            raise RuntimeError("core network down")
        super().bind_many(bindings)


@pytest.fixture
def setup(db_url: str, tmp_path: Path) -> Iterator[tuple[ServiceContext, FlakyCore]]:
    from resim.settings import Settings

    upgrade(db_url)
    settings = Settings(database_url=db_url, data_dir=tmp_path, secret_keys=KEY)  # type: ignore[arg-type]
    engine = build_engine(settings)
    core = FlakyCore(engine)
    context = build_context(settings, engine=engine, core=core)
    import_file(context, "brands", SAMPLES / "brands.toml")
    yield context, core
    engine.dispose()


def bound_lines(ctx: ServiceContext) -> tuple[set[str], set[str]]:
    """(numbers of resim's lines, numbers the core network holds)."""
    with ctx.uow() as uow:
        s = uow.session
        lines = set(s.scalars(sa.select(orm.line.c.msisdn)))
        core = set(s.scalars(sa.select(corenet_subscriber.c.msisdn).where(
            corenet_subscriber.c.msisdn.is_not(None))))  # fmt: skip
    return lines, core


class TestCoreBindingsOfALinesImport:
    def test_run_beside_the_batch_on_postgresql_and_before_it_on_sqlite(
        self, setup: tuple[ServiceContext, FlakyCore], tmp_path: Path, db_url: str
    ) -> None:
        ctx, core = setup
        paths = files(tmp_path)
        import_file(ctx, "subscribers", paths["subscribers"], batch_size=40)
        import_file(ctx, "sims", paths["sims"], batch_size=40)
        report = import_file(ctx, "lines", paths["lines"], batch_size=40)
        assert report.written > 200 and len(core.threads) > 1
        beside = {name.startswith("resim-import-effects") for name in core.threads}
        assert beside == {db_url.startswith("postgresql")}
        lines, bound = bound_lines(ctx)
        assert len(lines) == report.written and bound == lines

    def test_a_failed_binding_rolls_its_batch_back_and_a_rerun_completes(
        self, setup: tuple[ServiceContext, FlakyCore], tmp_path: Path
    ) -> None:
        ctx, core = setup
        paths = files(tmp_path)
        import_file(ctx, "subscribers", paths["subscribers"], batch_size=40)
        import_file(ctx, "sims", paths["sims"], batch_size=40)
        core.fail_at = 3
        with pytest.raises(RuntimeError, match="core network down"):
            import_file(ctx, "lines", paths["lines"], batch_size=40)
        lines, bound = bound_lines(ctx)
        assert lines and lines <= bound  # two batches committed, the core never behind
        with ctx.uow() as uow:  # no SIM bound to a line that was rolled back
            bound_sims = uow.session.scalar(
                sa.select(sa.func.count())
                .select_from(orm.sim)
                .where(orm.sim.c.line_id.is_not(None))
            )
        assert bound_sims == len(lines)

        core.fail_at = None
        again = import_file(ctx, "lines", paths["lines"], batch_size=40)
        assert again.unchanged == len(lines) and again.written > 0
        lines, bound = bound_lines(ctx)
        assert len(lines) == again.unchanged + again.written and bound == lines
