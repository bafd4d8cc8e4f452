import type { Cursor, EntityState } from "../generated/schemas";
import { cloneJson, type OutboxRecord, type ServerUpdate, type Store } from "./types";

/** The data behind a MemoryStore; hand the same one to a new store to "reopen" it. */
export interface MemoryData {
  entities: Map<string, Map<string, EntityState>>;
  ops: Map<string, OutboxRecord>;
  cursors: Map<string, Cursor>;
  meta: Map<string, unknown>;
}

export function createMemoryData(): MemoryData {
  return { entities: new Map(), ops: new Map(), cursors: new Map(), meta: new Map() };
}

/** In-memory Store: values are copied in and out, like IndexedDB's structured clone. */
export class MemoryStore implements Store {
  private closed = false;

  constructor(readonly data: MemoryData = createMemoryData()) {}

  private check(): void {
    if (this.closed) throw new Error("store is closed");
  }

  private collection(name: string): Map<string, EntityState> {
    let c = this.data.entities.get(name);
    if (c === undefined) {
      c = new Map();
      this.data.entities.set(name, c);
    }
    return c;
  }

  async getEntity(collection: string, entityId: string): Promise<EntityState | undefined> {
    this.check();
    const e = this.data.entities.get(collection)?.get(entityId);
    return e === undefined ? undefined : cloneJson(e);
  }

  async listEntities(collection: string): Promise<EntityState[]> {
    this.check();
    const c = this.data.entities.get(collection);
    if (c === undefined) return [];
    return [...c.keys()].sort().map((k) => cloneJson(c.get(k) as EntityState));
  }

  async writeServerState(update: ServerUpdate): Promise<void> {
    this.check();
    const copies = update.entities.map((e) => cloneJson(e));
    for (const e of copies) {
      if (e.collection !== update.collection) {
        throw new Error(`entity ${e.entity_id} is in ${e.collection}, not ${update.collection}`);
      }
    }
    const c = this.collection(update.collection);
    if (update.replace) c.clear();
    for (const e of copies) c.set(e.entity_id, e);
    if (update.cursor !== undefined) this.setCursorNow(update.collection, update.cursor);
  }

  async putOps(records: OutboxRecord[]): Promise<void> {
    this.check();
    for (const r of records) this.data.ops.set(r.op.op_id, cloneJson(r));
  }

  async getOp(opId: string): Promise<OutboxRecord | undefined> {
    this.check();
    const r = this.data.ops.get(opId);
    return r === undefined ? undefined : cloneJson(r);
  }

  async listOps(): Promise<OutboxRecord[]> {
    this.check();
    return [...this.data.ops.values()].sort((a, b) => a.seq - b.seq).map((r) => cloneJson(r));
  }

  async deleteOps(opIds: string[]): Promise<void> {
    this.check();
    for (const id of opIds) this.data.ops.delete(id);
  }

  async getCursor(collection: string): Promise<Cursor | null> {
    this.check();
    return this.data.cursors.get(collection) ?? null;
  }

  async setCursor(collection: string, cursor: Cursor | null): Promise<void> {
    this.check();
    this.setCursorNow(collection, cursor);
  }

  private setCursorNow(collection: string, cursor: Cursor | null): void {
    if (cursor === null) this.data.cursors.delete(collection);
    else this.data.cursors.set(collection, cursor);
  }

  async getMeta<T>(key: string): Promise<T | undefined> {
    this.check();
    const v = this.data.meta.get(key);
    return v === undefined ? undefined : (cloneJson(v) as T);
  }

  async setMeta(key: string, value: unknown): Promise<void> {
    this.check();
    this.data.meta.set(key, cloneJson(value));
  }

  close(): void {
    this.closed = true;
  }
}
