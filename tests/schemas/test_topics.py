import pytest

from schemas.topics import (
    DEFAULT_PREFIX,
    TopicError,
    Topics,
    entity_key,
    parse_entity_key,
    receipt_key,
)


def test_topics_default_prefix_names_every_topic() -> None:
    topics = Topics()
    assert DEFAULT_PREFIX == "syncpipe."
    assert topics.all() == (
        "syncpipe.ops",
        "syncpipe.entities",
        "syncpipe.conflicts",
        "syncpipe.receipts",
        "syncpipe.ops.dlq",
    )


def test_topics_custom_prefix_applies_to_all_and_only_entities_is_compacted() -> None:
    topics = Topics("shadow.")
    assert all(name.startswith("shadow.") for name in topics.all())
    assert [t for t in topics.all() if topics.is_compacted(t)] == ["shadow.entities"]


@pytest.mark.parametrize(
    "prefix", ["with space.", "slash/", "x" * 201], ids=["space", "slash", "long"]
)
def test_topics_rejects_bad_prefix(prefix: str) -> None:
    with pytest.raises(TopicError, match="invalid topic prefix"):
        Topics(prefix)


@pytest.mark.parametrize(
    ("tenant", "collection", "entity_id"),
    [("acme", "tasks", "t1"), ("acme", "tasks", "a/b/c"), ("t-1", "c_2", "ü ✓")],
    ids=["plain", "slashes-in-entity-id", "unicode"],
)
def test_entity_key_round_trips(tenant: str, collection: str, entity_id: str) -> None:
    key = entity_key(tenant, collection, entity_id)
    assert key == f"{tenant}/{collection}/{entity_id}"
    parsed = parse_entity_key(key)
    assert (parsed.tenant, parsed.collection, parsed.entity_id) == (tenant, collection, entity_id)
    assert str(parsed) == key


@pytest.mark.parametrize(
    ("tenant", "collection", "entity_id"),
    [("", "tasks", "t1"), ("a/b", "tasks", "t1"), ("acme", "", "t1"), ("acme", "tasks", "")],
    ids=["empty-tenant", "slash-tenant", "empty-collection", "empty-entity"],
)
def test_entity_key_rejects_ambiguous_parts(tenant: str, collection: str, entity_id: str) -> None:
    with pytest.raises(TopicError):
        entity_key(tenant, collection, entity_id)


@pytest.mark.parametrize("key", ["acme/tasks", "acme//t1", "", "/tasks/t1"])
def test_parse_entity_key_rejects_malformed(key: str) -> None:
    with pytest.raises(TopicError, match="invalid entity key"):
        parse_entity_key(key)


def test_receipt_key_is_tenant_and_client() -> None:
    assert receipt_key("acme", "phone-1") == "acme/phone-1"
    with pytest.raises(TopicError):
        receipt_key("acme", "a/b")
