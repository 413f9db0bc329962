"""The replacement request: the aggregate at the centre, and its behaviour.

Pure Python (mapped to its table by ``resim.adapters.db.orm``). Callers ask the
request to act -- ``open``, ``verify``, ``assess``, ``approve``, ``reject``,
``start_provisioning`` (order), ``mark_ready``, ``install``, ``complete`` (cut
over), ``cancel``, ``expire``, ``fail``, ``reissue`` and the smaller steps
below -- and never assign its fields (a test walks ``src/resim`` for that).
Each method checks the transition table (``domain.workflow``) or a sub-state
table (``domain.substates``), raises ``InvalidTransition`` (nothing changed)
on a forbidden pair, and records what happened in :attr:`events`
(``domain.events``). The unit of work turns those into audit rows and outbox
jobs when it commits (``services.event_handlers``).

Policy decisions (which rules fire, how long cooling-off lasts, who may
review) stay with the callers; the request enforces its own consistency:
state and sub-states, the four-eyes count, the fields each step sets together.
"""

from __future__ import annotations

from resim.domain.request_deciding import Deciding
from resim.domain.request_fulfilment import Fulfilment
from resim.domain.request_opening import OPENED, Opening

__all__ = ["OPENED", "ReplacementRequest"]


class ReplacementRequest(Opening, Deciding, Fulfilment):
    """The aggregate. Only :meth:`move_to` changes ``state``; only the methods
    (``request_opening``, ``request_deciding``, ``request_fulfilment``) change any
    field (the constructor is for the mapper, the ``open`` factory and tests)."""
