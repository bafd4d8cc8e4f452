"""LWW apply throughput, in-process (no Kafka): the ceiling for one streams worker.

Prints ops/s for JSON decode + apply + encode of the outputs, over a hot-entity and a
spread-out workload. Usage: ``uv run python perf/bench_lww.py [--ops N]``.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import orjson

from schemas.hlc import HlcClock
from streams.lww import EntityRecord, Op, apply, public_state


def make_ops(n: int, entities: int, clients: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    clocks = [HlcClock(f"client-{i}", wall_clock=lambda: 1_700_000_000_000) for i in range(clients)]
    out = []
    for i in range(n):
        c = rng.randrange(clients)
        kind = "delete" if rng.random() < 0.02 else "upsert"
        doc: dict[str, Any] = {
            "op_id": f"op-{i}",
            "client_id": f"client-{c}",
            "collection": "tasks",
            "entity_id": f"t{rng.randrange(entities)}",
            "kind": kind,
            "hlc": str(clocks[c].now()),
            "tenant": "acme",
            "user_id": "u",
            "received_at_ms": 1_700_000_000_000 + i,
        }
        if kind == "upsert":
            doc["fields"] = {rng.choice(["title", "done", "notes"]): f"value {i}"}
        out.append(orjson.dumps(doc))
    return out


def run(raw_ops: list[bytes]) -> float:
    table: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    for raw in raw_ops:
        op = Op.from_dict(orjson.loads(raw))
        key = f"{op.tenant}/{op.collection}/{op.entity_id}"
        stored = table.get(key)
        record = EntityRecord.from_dict(stored) if stored is not None else None
        result = apply(record, op)
        if result.changed:
            orjson.dumps(public_state(result.record))
            table[key] = result.record.to_dict()
        orjson.dumps(result.receipt.to_dict())
        if result.conflict is not None:
            orjson.dumps(result.conflict.to_dict())
    return len(raw_ops) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=50_000, help="ops per workload")
    args = parser.parse_args()
    for name, entities, clients in (
        ("hot: 10 entities, 5 clients", 10, 5),
        ("spread: 10,000 entities, 50 clients", 10_000, 50),
    ):
        ops = make_ops(args.ops, entities, clients)
        rate = run(ops)
        print(f"lww apply  {name:<38} {rate:>10,.0f} ops/s  ({args.ops:,} ops)")


if __name__ == "__main__":
    main()
