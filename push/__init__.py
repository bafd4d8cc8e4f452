"""push: the WebSocket fanout service (``syncpipe push``).

Modules, in the order data flows through them:

* ``source`` consumes every partition of entities/conflicts/receipts (no group),
  ``records`` decodes and checks each record against the contract;
* ``hub`` routes events to subscribed connections (entities by tenant and collection,
  conflicts and receipts to their author), keeps the resume buffer (``recent``) and
  answers subscribe with snapshots (``snapshot`` reads Redis) or resumes (``cursor``);
* ``conflation`` is the per-connection queue (a data structure, no policy);
  ``connection`` is the writer's policy (byte budget via ``limiter``, conflation,
  overload notice and close); ``writer`` is its I/O (eager flush passes, one task per
  connection for waiting), ``wire`` writes pre-built frames straight to uvicorn's
  transport;
* ``session`` is one WebSocket from handshake to close; ``app`` wires it all
  (``create_app``), with ``metrics``, ``settings``, ``errors`` and ``close_codes`` (the
  one table of close and error codes).
"""
