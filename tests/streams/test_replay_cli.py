"""``syncpipe replay ...`` run as real subprocesses against a real Kafka, Redis and workers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from schemas.readmodel import entities_key
from schemas.topics import Topics
from streams import replay
from streams.provision import ensure_topics
from tests.processes import REPO, free_port
from tests.streams.conftest import PARTITIONS, Pipeline
from tests.streams.helpers import produce, produce_ops, wait_until
from tests.streams.test_convergence import client_ops, wait_converged


async def syncpipe(
    pipeline: Pipeline, *args: str, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCPIPE_")}
    env.update({k: v for k, v in pipeline.env().items() if k not in unset})
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "syncpipe", "replay", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Non-zero exit, one ``error: ...`` line that says what is wrong, no traceback."""
    assert proc.returncode not in (0, 1), (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


async def converged_pipeline(pipeline: Pipeline, seed: int) -> list[dict[str, object]]:
    pipeline.worker()
    ops = client_ops("c1", 0, 120, 10, seed=seed) + client_ops("c2", 5_000, 120, 10, seed=seed + 1)
    await produce_ops(pipeline.bootstrap, pipeline.topics.ops, ops)
    await wait_converged(pipeline, {str(op["op_id"]) for op in ops}, 90)
    return ops


async def stop_workers(pipeline: Pipeline) -> None:
    for worker in pipeline.workers:
        worker.stop()
    group = f"{pipeline.topics.prefix}streams"

    async def group_empty() -> bool:
        return await replay._live_members(pipeline.bootstrap, group) == 0

    await wait_until(group_empty, 30, "the streams group to empty")


async def test_cli_rebuild_refuses_while_workers_run_then_reproduces_identical_entities(
    pipeline: Pipeline,
) -> None:
    ops = await converged_pipeline(pipeline, seed=51)
    running = await syncpipe(pipeline, "rebuild")
    assert_clean_error(running, "live member", "stop the streams workers")
    assert running.returncode == 3, "retriable: run it again once the workers are stopped"

    await stop_workers(pipeline)
    before = await pipeline.read_model()
    # the rebuild restores a read-model entry that was lost
    await pipeline.redis.hdel(entities_key(pipeline.redis_prefix, "acme", "tasks"), "e1")
    proc = await syncpipe(pipeline, "rebuild")

    assert proc.returncode == 0, proc.stderr
    assert f"{len(ops)} ops reprocessed into 10 entities" in proc.stdout
    assert "10 entities identical; 0 differ; 0 only in live; 0 only in rebuilt" in proc.stdout
    assert "table and read model rebuilt (10 entities)" in proc.stdout
    assert await pipeline.read_model() == before


async def test_cli_rebuild_that_differs_from_live_installs_nothing(pipeline: Pipeline) -> None:
    await converged_pipeline(pipeline, seed=53)
    await stop_workers(pipeline)
    planted = {"tenant": "acme", "collection": "tasks", "entity_id": "e3", "version": 10_000}
    await produce(
        pipeline.bootstrap,
        pipeline.topics.entities,
        [(b"acme/tasks/e3", orjson.dumps(_state_like(planted)))],
    )
    before = await pipeline.read_model()

    proc = await syncpipe(pipeline, "rebuild")

    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "differ: acme/tasks/e3" in proc.stdout
    assert "nothing installed (use --force)" in proc.stderr
    assert await pipeline.read_model() == before


def _state_like(over: dict[str, object]) -> dict[str, object]:
    state: dict[str, object] = {
        "fields": {},
        "deleted_hlc": None,
        "deleted_by": None,
        "deleted_op_id": None,
        "deleted": False,
        "last_op_id": "planted",
        "received_at_ms": 1,
    }
    state.update(over)
    return state


async def test_cli_shadow_from_offset_and_from_time_then_diff(pipeline: Pipeline) -> None:
    ops = await converged_pipeline(pipeline, seed=61)
    first_ms = min(int(str(op["received_at_ms"])) for op in ops)
    before_all = datetime.fromtimestamp((first_ms - 60_000) / 1000, tz=UTC).isoformat()

    by_offset = f"so{uuid.uuid4().hex[:8]}."
    shadow = await syncpipe(pipeline, "shadow", "--prefix", by_offset, "--from-offset", "0")
    assert shadow.returncode == 0, shadow.stderr
    assert f"{len(ops)} ops replayed into {by_offset}* (0 to the DLQ)" in shadow.stdout
    same = await syncpipe(pipeline, "diff", "--prefix", by_offset)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "10 entities identical; 0 differ; 0 only in live; 0 only in shadow" in same.stdout

    by_time = f"st{uuid.uuid4().hex[:8]}."
    shadow = await syncpipe(pipeline, "shadow", "--prefix", by_time, "--from-time", before_all)
    assert shadow.returncode == 0, shadow.stderr
    assert f"{len(ops)} ops replayed" in shadow.stdout
    same = await syncpipe(pipeline, "diff", "--prefix", by_time)
    assert same.returncode == 0, same.stdout + same.stderr

    # a shadow entity that differs is named, and the diff exits 1
    key = b"acme/tasks/e4"
    shadow_state = (await _latest(pipeline, Topics(by_time).entities))[key]
    changed = {**shadow_state, "version": shadow_state["version"] + 1, "last_op_id": "planted"}
    await produce(pipeline.bootstrap, Topics(by_time).entities, [(key, orjson.dumps(changed))])
    differs = await syncpipe(pipeline, "diff", "--prefix", by_time)
    assert differs.returncode == 1, differs.stdout + differs.stderr
    assert "9 entities identical; 1 differ" in differs.stdout
    assert "differ: acme/tasks/e4" in differs.stdout
    content = await syncpipe(pipeline, "diff", "--prefix", by_time, "--content-only")
    assert content.returncode == 0, "same fields and deletion: only the version moved"

    # starting late misses ops: the shadow is behind the live entities
    late = f"sl{uuid.uuid4().hex[:8]}."
    shadow = await syncpipe(pipeline, "shadow", "--prefix", late, "--from-offset", "40")
    assert shadow.returncode == 0, shadow.stderr
    behind = await syncpipe(pipeline, "diff", "--prefix", late)
    assert behind.returncode == 1, behind.stdout + behind.stderr
    assert "differ: " in behind.stdout or "only in live: " in behind.stdout


async def _latest(pipeline: Pipeline, topic: str) -> dict[bytes, dict[str, int]]:
    from streams import kafka_io

    c = await kafka_io.consumer(pipeline.bootstrap)
    try:
        return await kafka_io.latest_by_key(c, topic)
    finally:
        await c.stop()


async def test_cli_dump_to_json_lines_and_load_back(pipeline: Pipeline, tmp_path: Path) -> None:
    ops = client_ops("c1", 0, 90, 8, seed=71)
    await produce_ops(pipeline.bootstrap, pipeline.topics.ops, ops)
    first = tmp_path / "ops.jsonl"
    dumped = await syncpipe(pipeline, "dump", pipeline.topics.ops, str(first))
    assert dumped.returncode == 0, dumped.stderr
    assert f"{len(ops)} records written to {first}" in dumped.stdout
    lines = [orjson.loads(line) for line in first.read_bytes().splitlines()]
    assert len(lines) == len(ops)
    assert set(lines[0]) == {"partition", "offset", "timestamp_ms", "key", "value"}

    copy = Topics(f"c{uuid.uuid4().hex[:8]}.")
    await ensure_topics(pipeline.bootstrap, copy, partitions=PARTITIONS, names=[copy.ops])
    loaded = await syncpipe(pipeline, "load", str(first), copy.ops)
    assert loaded.returncode == 0, loaded.stderr
    assert f"{len(ops)} records produced to {copy.ops}" in loaded.stdout
    second = tmp_path / "copy.jsonl"
    assert (await syncpipe(pipeline, "dump", copy.ops, str(second))).returncode == 0

    def records(path: Path) -> list[tuple[int, int, str | None, str | None]]:
        docs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        return [(d["partition"], d["offset"], d["key"], d["value"]) for d in docs]

    assert records(first) == records(second)
    assert names_in(tmp_path) == ["copy.jsonl", "ops.jsonl"], "no partial file is left"


def names_in(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


BAD_LINES = [
    (b"{not json\n", "not JSON"),
    (b"[1, 2]\n", "not a JSON object"),
    (b'{"partition": 0, "value": null}\n', "missing key"),
    (b'{"partition": 0, "key": null, "value": "%%%"}\n', "value is not valid base64"),
    (b'{"partition": "zero", "key": null, "value": null}\n', "partition must be an integer"),
]


@pytest.mark.parametrize(
    ("bad", "says"), BAD_LINES, ids=["not-json", "array", "no-key", "bad-base64", "partition"]
)
async def test_cli_load_of_a_malformed_file_names_the_line_and_loads_nothing(
    pipeline: Pipeline, tmp_path: Path, bad: bytes, says: str
) -> None:
    good = b'{"partition": 0, "offset": 0, "timestamp_ms": 1, "key": "YQ==", "value": "Yg=="}\n'
    path = tmp_path / "bad.jsonl"
    path.write_bytes(good + bad)

    proc = await syncpipe(pipeline, "load", str(path), pipeline.topics.receipts)

    assert_clean_error(proc, f"{path}:2:", says, "nothing was loaded")
    ends = await _end_offsets(pipeline, pipeline.topics.receipts)
    assert sum(ends) == 0


async def _end_offsets(pipeline: Pipeline, topic: str) -> list[int]:
    from streams import kafka_io

    c = await kafka_io.consumer(pipeline.bootstrap)
    try:
        tps = await kafka_io.partitions(c, topic)
        _, ends = await kafka_io.bounds(c, tps)
        return list(ends.values())
    finally:
        await c.stop()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("dump", "nope.not-a-topic", "{tmp}/x.jsonl"), "topic 'nope.not-a-topic' does not exist"),
        (("dump", "{ops}", "{tmp}/no/such/dir/x.jsonl"), "cannot write"),
        (("load", "{tmp}/missing.jsonl", "{ops}"), "cannot read"),
        (("load", "{tmp}/empty.jsonl", "nope.not-a-topic"), "does not exist"),
        (("diff", "--prefix", "nothere."), "topic 'nothere.entities' does not exist"),
        (("diff", "--prefix", "bad prefix"), "invalid topic prefix"),
        (("shadow", "--prefix", "{prefix}"), "must differ from SYNCPIPE_TOPIC_PREFIX"),
        (("shadow", "--prefix", "x.", "--from-time", "yesterday"), "not an ISO 8601 time"),
        (("shadow", "--prefix", "x.", "--from-time", "2026-13-45T99:00"), "not an ISO 8601"),
        (("shadow", "--prefix", "x.", "--from-offset", "-1"), "--from-offset must be 0 or more"),
        (
            ("shadow", "--prefix", "x.", "--from-offset", "1", "--from-time", "2026-01-01"),
            "not both",
        ),
    ],
    ids=[
        "dump-unknown-topic",
        "dump-unwritable",
        "load-missing-file",
        "load-unknown-topic",
        "diff-unknown-prefix",
        "diff-bad-prefix",
        "shadow-live-prefix",
        "shadow-bad-time",
        "shadow-impossible-time",
        "shadow-negative-offset",
        "shadow-offset-and-time",
    ],
)
async def test_cli_bad_input_is_one_clear_error_line(
    pipeline: Pipeline, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    values = {"tmp": str(tmp_path), "ops": pipeline.topics.ops, "prefix": pipeline.topics.prefix}
    proc = await syncpipe(pipeline, *(a.format(**values) for a in args))
    assert_clean_error(proc, says)


async def test_cli_rebuild_without_a_read_model_changes_nothing(pipeline: Pipeline) -> None:
    await produce_ops(pipeline.bootstrap, pipeline.topics.ops, client_ops("c1", 0, 20, 4, seed=81))
    proc = await syncpipe(pipeline, "rebuild", unset=("SYNCPIPE_REDIS_URL",))
    assert_clean_error(proc, "SYNCPIPE_REDIS_URL is not set")
    changelog = f"{pipeline.topics.prefix}streams-entities-changelog"
    assert changelog not in await _topics(pipeline), "checked before anything is written"


async def _topics(pipeline: Pipeline) -> set[str]:
    from streams import kafka_io

    c = await kafka_io.consumer(pipeline.bootstrap)
    try:
        return set(await c.topics())
    finally:
        await c.stop()


async def test_cli_unreachable_kafka_is_a_retriable_error(pipeline: Pipeline) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCPIPE_")}
    env.update({**pipeline.env(), "SYNCPIPE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"})
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "syncpipe", "replay", "rebuild"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert_clean_error(proc, "cannot reach Kafka")
    assert proc.returncode == 3


@pytest.mark.parametrize(
    ("command", "explains"),
    [
        ((), ("rebuild", "shadow", "diff", "dump", "load")),
        (("rebuild",), ("--force", "Stop the streams workers", "identical")),
        (("shadow",), ("--prefix", "--from-offset", "--from-time", "ISO 8601", "diff")),
        (("diff",), ("--prefix", "--content-only", "Exit 0 when identical")),
        (("dump",), ("TOPIC", "FILE", "JSON lines", "base64")),
        (("load",), ("FILE", "TOPIC", "replay dump", "malformed line loads nothing")),
    ],
    ids=["replay", "rebuild", "shadow", "diff", "dump", "load"],
)
def test_cli_help_explains_each_replay_command(
    command: tuple[str, ...], explains: tuple[str, ...]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCPIPE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "syncpipe", "replay", *command, "--help"],
        cwd=REPO,
        env={**env, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    flat = " ".join(proc.stdout.replace("│", " ").split())
    for words in explains:
        assert words in flat, (words, proc.stdout)
