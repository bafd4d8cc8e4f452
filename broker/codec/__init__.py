"""Kafka wire codec: primitives, request/response headers, record batches (magic 2)."""
