"""The stores the use cases read and write through, as ``typing.Protocol``s.

A unit of work hands them out as typed attributes (``uow.staff``,
``uow.api_clients``, ``uow.attempts``...); the SQLAlchemy implementations live
in :mod:`resim.adapters.db.stores`, the in-memory ones (where a store is simple
enough to have one) in :mod:`resim.adapters.memory`. Both pass the contract
tests in ``tests/contract``. Every method runs inside the caller's unit of
work: nothing here commits.

Entities handed out (``StaffUser``, ``ApiClient``...) are live: changing an
attribute changes what the unit of work commits, as with the SQLAlchemy
session, so a store has no ``save`` for them.
"""
