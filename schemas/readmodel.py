"""The Redis read model: where accepted entity state is kept for snapshot reads.

Written by the streams ``materialize`` agent, read by ingest (GET entities) and push
(snapshots). One hash per tenant and collection, field = entity id, value = the
EntityState JSON. Writes go through :data:`UPSERT_IF_NEWER`, which keeps a state only
when its version is newer than the stored one, so out-of-order or replayed records
never regress state.
"""

from __future__ import annotations

from typing import Final

DEFAULT_REDIS_PREFIX: Final = "syncpipe:"


def entities_key(prefix: str, tenant: str, collection: str) -> str:
    """Hash holding every entity of one collection of one tenant."""
    return f"{prefix}rm:{tenant}:{collection}"


UPSERT_IF_NEWER: Final = """
-- KEYS[i]: entities hash of item i; ARGV: entity_id, version, state_json per item.
-- Returns the number of items written (stored version older or absent).
local written = 0
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 3
  local entity_id = ARGV[base + 1]
  local version = tonumber(ARGV[base + 2])
  local current = redis.call('HGET', key, entity_id)
  local newer = true
  if current then
    local ok, doc = pcall(cjson.decode, current)
    if ok and type(doc) == 'table' and tonumber(doc['version']) ~= nil then
      newer = version > tonumber(doc['version'])
    end
  end
  if newer then
    redis.call('HSET', key, entity_id, ARGV[base + 3])
    written = written + 1
  end
end
return written
"""
