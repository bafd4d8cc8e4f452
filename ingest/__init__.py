"""ingest: the HTTP front door of the pipeline (``syncpipe ingest``).

``POST /v1/ops`` judges each op of a batch on its own, claims op ids in Redis, produces
the accepted ones to the ops topic (idempotent producer, acks=all) and answers one
result per op plus the server HLC. ``GET /v1/collections/{collection}/entities`` pages
the Redis read model. Errors are RFC 9457 problem+json (:mod:`ingest.errors`).

Modules: ``app`` (factory, error mapping), ``routes/`` (thin HTTP adapters), ``service``
(the domain), ``validate`` (pure per-op checks), ``auth``, ``ratelimit``, ``dedupe``,
``producer`` (Kafka), ``metrics``, ``models``, ``settings``, ``errors``.
"""
