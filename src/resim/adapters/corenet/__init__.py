"""Adapters for the CoreNetwork port (HLR/HSS/UDM); see ``resim.services.ports``.

- ``builtin.BuiltinCoreNetwork``: resim's own tables (``CORENET_METADATA``)
- ``fake.FakeCoreNetwork``: in memory, same contract, for tests
- ``osmo_hlr.OsmoHlrCoreNetwork``: a real osmo-hlr over its CTRL interface
  (``osmo_ctrl``) and its VTY (``osmo_vty``: network access, so that an
  attached phone is dropped); ``osmo_hlr_runner`` starts one on loopback for
  tests and demos
- ``rules``: the semantics and error codes all of them share

Nothing is imported here, so choosing an adapter stays the composition root's job
(``resim.bootstrap.build_core_network``, from ``RESIM_CORE_NETWORK``).
"""
