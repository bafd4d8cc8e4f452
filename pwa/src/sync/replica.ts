/**
 * The client's copy of server state, and the local view built from it.
 *
 * Server state: per entity, the last EntityState the server sent, kept only if its
 * version is newer than the one held. Local view: that state with the user's unconfirmed
 * ops applied on top through the same LWW function the server uses. Because LWW is
 * idempotent and order-independent in content, re-applying ops the server already has
 * changes nothing, so rebasing on every server update never makes a value flicker.
 */
import type { EntityState, Op, SnapshotMessage } from "../generated/schemas";
import { applyOp, recordFromState, type EntityRecord } from "./lww";

export class Replica {
  private readonly collections = new Map<string, Map<string, EntityState>>();

  private collection(name: string): Map<string, EntityState> {
    let c = this.collections.get(name);
    if (c === undefined) {
      c = new Map();
      this.collections.set(name, c);
    }
    return c;
  }

  load(collection: string, entities: EntityState[]): void {
    const c = this.collection(collection);
    c.clear();
    for (const e of entities) c.set(e.entity_id, e);
  }

  get(collection: string, entityId: string): EntityState | undefined {
    return this.collections.get(collection)?.get(entityId);
  }

  list(collection: string): EntityState[] {
    return [...(this.collections.get(collection)?.values() ?? [])];
  }

  /** Keep `state` iff it is newer than what is held; returns whether it was kept. */
  offer(state: EntityState): boolean {
    const c = this.collection(state.collection);
    const held = c.get(state.entity_id);
    if (held !== undefined && held.version >= state.version) return false;
    c.set(state.entity_id, state);
    return true;
  }

  /**
   * Apply a snapshot: resumed=false replaces the collection, resumed=true merges by
   * version. Returns the entities to persist and whether the store must drop the rest.
   */
  applySnapshot(msg: SnapshotMessage): { replace: boolean; entities: EntityState[] } {
    if (!msg.resumed) {
      const c = this.collection(msg.collection);
      // A full snapshot is the truth, but never step back from a newer state we hold
      // (an entity message may have overtaken the snapshot read).
      const next = new Map<string, EntityState>();
      for (const e of msg.entities) {
        const held = c.get(e.entity_id);
        next.set(e.entity_id, held !== undefined && held.version > e.version ? held : e);
      }
      this.collections.set(msg.collection, next);
      return { replace: true, entities: [...next.values()] };
    }
    return { replace: false, entities: msg.entities.filter((e) => this.offer(e)) };
  }
}

/** The local view of one entity: server state with the given ops applied in order. */
export function localRecord(
  collection: string,
  entityId: string,
  server: EntityState | undefined,
  ops: Op[],
): EntityRecord | null {
  let record: EntityRecord | null = server === undefined ? null : recordFromState(server);
  const tenant = server?.tenant ?? "local";
  for (const op of ops) {
    if (op.collection !== collection || op.entity_id !== entityId) continue;
    record = applyOp(record, { ...op, tenant, user_id: "local", received_at_ms: 0 }).record;
  }
  return record;
}
