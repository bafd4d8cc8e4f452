"""Topics and their partition logs: the one owner of cluster state (event loop only).

On disk::

    data_dir/topics/<topic>/topic.json     {"name", "id", "partitions", "configs"}
    data_dir/topics/<topic>/<partition>/   segment files
    data_dir/producer-ids                  next free producer id (block-allocated)
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from broker import errors
from broker.log.config import LogConfig
from broker.log.flush import Flusher
from broker.log.partition import PartitionLog, fsync_dir
from broker.settings import BrokerSettings

log = logging.getLogger(__name__)

_TOPIC_RE = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
PRODUCER_ID_BLOCK = 1000


def valid_topic_name(name: str) -> bool:
    return bool(_TOPIC_RE.match(name)) and name not in (".", "..")


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


@dataclass(slots=True)
class Topic:
    name: str
    id: uuid.UUID
    configs: dict[str, str]
    config: LogConfig
    partitions: list[PartitionLog] = field(default_factory=list)


class TopicError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Cluster:
    def __init__(self, settings: BrokerSettings, flusher: Flusher) -> None:
        self.settings = settings
        self.flusher = flusher
        self.topics: dict[str, Topic] = {}
        self.topics_dir = settings.data_dir / "topics"
        self.trash_dir = settings.data_dir / "deleted"
        self._next_pid = 0
        self._pid_limit = 0

    def load(self) -> None:
        self.topics_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.trash_dir, ignore_errors=True)
        for meta_path in sorted(self.topics_dir.glob("*/topic.json")):
            meta = orjson.loads(meta_path.read_bytes())
            configs = {str(k): str(v) for k, v in meta["configs"].items()}
            topic = Topic(
                meta["name"],
                uuid.UUID(meta["id"]),
                configs,
                LogConfig.build(configs, self.settings),
            )
            for p in range(int(meta["partitions"])):
                topic.partitions.append(self._open_partition(topic, p))
            self.topics[topic.name] = topic
            log.info("topic loaded", extra={"topic": topic.name, "partitions": meta["partitions"]})
        self._load_producer_ids()

    def _open_partition(self, topic: Topic, p: int) -> PartitionLog:
        return PartitionLog(
            topic.name, p, self.topics_dir / topic.name / str(p), topic.config, self.flusher
        )

    def _persist(self, topic: Topic) -> None:
        doc = {
            "name": topic.name,
            "id": str(topic.id),
            "partitions": len(topic.partitions),
            "configs": topic.configs,
        }
        write_atomic(self.topics_dir / topic.name / "topic.json", orjson.dumps(doc))

    # --- topics -------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int = -1,
        configs: dict[str, str] | None = None,
        validate_only: bool = False,
    ) -> Topic:
        if not valid_topic_name(name):
            raise TopicError(errors.INVALID_TOPIC_EXCEPTION, f"invalid topic name {name!r}")
        if name in self.topics:
            raise TopicError(errors.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        if partitions == -1:
            partitions = self.settings.default_partitions
        if not 1 <= partitions <= 10_000:
            raise TopicError(errors.INVALID_PARTITIONS, "partitions must be 1..10000")
        configs = dict(configs or {})
        try:
            config = LogConfig.build(configs, self.settings)
        except ValueError as exc:
            raise TopicError(errors.INVALID_CONFIG, str(exc)) from exc
        topic = Topic(name, uuid.uuid4(), configs, config)
        if validate_only:
            return topic
        (self.topics_dir / name).mkdir(parents=True, exist_ok=True)
        for p in range(partitions):
            topic.partitions.append(self._open_partition(topic, p))
        self._persist(topic)
        fsync_dir(self.topics_dir)
        self.topics[name] = topic
        log.info(
            "topic created",
            extra={"topic": name, "partitions": partitions, "configs": configs},
        )
        return topic

    def delete_topic(self, name: str) -> None:
        topic = self.topics.pop(name, None)
        if topic is None:
            raise TopicError(errors.UNKNOWN_TOPIC_OR_PARTITION, f"no topic {name!r}")
        for part in topic.partitions:
            part.close()
        self.trash_dir.mkdir(parents=True, exist_ok=True)
        doomed = self.trash_dir / f"{name}-{uuid.uuid4().hex}"
        os.replace(self.topics_dir / name, doomed)
        fsync_dir(self.topics_dir)
        try:  # the data is already unreachable; free the disk without blocking the loop
            asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, doomed, True)
        except RuntimeError:  # no loop (tests, tools): do it now
            shutil.rmtree(doomed, ignore_errors=True)
        log.info("topic deleted", extra={"topic": name})

    def get_or_create(self, name: str, allow_create: bool) -> Topic | None:
        topic = self.topics.get(name)
        if topic is None and allow_create and self.settings.auto_create_topics:
            try:
                topic = self.create_topic(name)
            except TopicError:
                return None
        return topic

    def partition(self, topic: str, index: int) -> PartitionLog | None:
        t = self.topics.get(topic)
        if t is None or not 0 <= index < len(t.partitions):
            return None
        return t.partitions[index]

    # --- producer ids -------------------------------------------------------------

    def _pid_path(self) -> Path:
        return self.settings.data_dir / "producer-ids"

    def _load_producer_ids(self) -> None:
        floor = 0
        if self._pid_path().exists():
            floor = int(self._pid_path().read_text().strip() or 0)
        in_logs = max(
            (p.producers.max_producer_id() for t in self.topics.values() for p in t.partitions),
            default=-1,
        )
        self._next_pid = max(floor, in_logs + 1)
        self._pid_limit = self._next_pid

    def allocate_producer_id(self) -> int:
        if self._next_pid >= self._pid_limit:
            self._pid_limit = self._next_pid + PRODUCER_ID_BLOCK
            write_atomic(self._pid_path(), str(self._pid_limit).encode())
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def close(self) -> None:
        for topic in self.topics.values():
            for part in topic.partitions:
                part.close()
