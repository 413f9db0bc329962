"""In-memory stores: the fakes of :mod:`resim.services.stores`, shipped in the package.

They keep live objects in dicts, so a change to an entity handed out is seen
by the next read, as with the SQLAlchemy session. They know no transactions:
a test that needs rollback runs on a database. They pass the same contract
tests as the SQL stores (``tests/contract``).
"""
