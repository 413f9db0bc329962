"""Tables of the built-in core network: its own metadata, kept apart from resim's.

``corenet_subscriber.msisdn`` is UNIQUE (NULLs allowed, many): the database
itself refuses a second IMSI for one number, as a real HLR does, so a bug in
the adapter cannot break the at-most-one-IMSI-per-MSISDN invariant.
``corenet_event`` is an append-only history; nothing reads it to decide.
"""

from __future__ import annotations

import sqlalchemy as sa

from resim.adapters.db.types import UtcDateTime

CORENET_METADATA = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)


corenet_subscriber = sa.Table(
    "corenet_subscriber",
    CORENET_METADATA,
    sa.Column("imsi", sa.String(15), primary_key=True),
    sa.Column("msisdn", sa.String(16), nullable=True, unique=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("retired", sa.Boolean, nullable=False),
    sa.Column("sms_hold_until", UtcDateTime, nullable=True),
    sa.Column("port_out_block_until", UtcDateTime, nullable=True),
    # When a device with this IMSI first registered (a location update reached
    # the HLR); None: never. Read by the reconcile job (services/provisioning/reconcile.py).
    sa.Column("attached_at", UtcDateTime, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # A retired IMSI never holds a number (see rules.py).
    sa.CheckConstraint("NOT (retired AND msisdn IS NOT NULL)", name="retired_holds_no_msisdn"),
)

corenet_event = sa.Table(
    "corenet_event",
    CORENET_METADATA,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("imsi", sa.String(15), nullable=False, index=True),
    sa.Column("msisdn", sa.String(16), nullable=True, index=True),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
)


# Statements built once (bound parameters): building a select costs more CPU
# than running a cached one.
READ = (
    sa.select(corenet_subscriber)
    .where(corenet_subscriber.c.imsi.in_(sa.bindparam("imsis", expanding=True)))
    .order_by(corenet_subscriber.c.imsi)
)
READ_LOCKED = READ.with_for_update()
HOLDER = sa.select(corenet_subscriber.c.imsi).where(
    corenet_subscriber.c.msisdn == sa.bindparam("msisdn")
)
LOG_EVENT = corenet_event.insert()
_UPDATES: dict[frozenset[str], sa.Update] = {}


def update_statement(columns: frozenset[str]) -> sa.Update:
    """``UPDATE corenet_subscriber SET <columns> WHERE imsi = :b_imsi`` (one per column set;
    the value of column ``c`` is bound as ``b_<c>``)."""
    stmt = _UPDATES.get(columns)
    if stmt is None:
        stmt = (
            corenet_subscriber.update()
            .where(corenet_subscriber.c.imsi == sa.bindparam("b_imsi"))
            .values(
                {
                    c: sa.bindparam(f"b_{c}", type_=corenet_subscriber.c[c].type)
                    for c in sorted(columns)
                }
            )
        )
        _UPDATES[columns] = stmt
    return stmt
