import { openDB, type DBSchema, type IDBPDatabase } from "idb";
import type { Cursor, EntityState } from "../generated/schemas";
import type { OutboxRecord, ServerUpdate, Store } from "./types";

/** Bump when the object stores change; add an upgrade step for each version. */
export const DB_VERSION = 1;

interface SyncpipeDb extends DBSchema {
  entities: {
    key: [string, string];
    value: EntityState;
    indexes: { by_collection: string };
  };
  outbox: {
    key: string;
    value: OutboxRecord;
    indexes: { by_seq: number };
  };
  cursors: { key: string; value: { collection: string; cursor: Cursor } };
  meta: { key: string; value: { key: string; value: unknown } };
}

/** IndexedDB Store (via `idb`): durable across reloads and browser restarts. */
export class IdbStore implements Store {
  private constructor(private readonly db: IDBPDatabase<SyncpipeDb>) {}

  /** Open (creating or upgrading) the database `name`. */
  static async open(name = "syncpipe"): Promise<IdbStore> {
    const db = await openDB<SyncpipeDb>(name, DB_VERSION, {
      upgrade(database, oldVersion) {
        if (oldVersion < 1) {
          const entities = database.createObjectStore("entities", {
            keyPath: ["collection", "entity_id"],
          });
          entities.createIndex("by_collection", "collection");
          const outbox = database.createObjectStore("outbox", { keyPath: "op.op_id" });
          outbox.createIndex("by_seq", "seq");
          database.createObjectStore("cursors", { keyPath: "collection" });
          database.createObjectStore("meta", { keyPath: "key" });
        }
      },
      blocking() {
        // A newer version of the app wants to upgrade: let it (this tab will reload).
        db.close();
      },
    });
    return new IdbStore(db);
  }

  async getEntity(collection: string, entityId: string): Promise<EntityState | undefined> {
    return this.db.get("entities", [collection, entityId]);
  }

  async listEntities(collection: string): Promise<EntityState[]> {
    // The compound key sorts by (collection, entity_id): a key range gives id order.
    return this.db.getAll("entities", IDBKeyRange.bound([collection, ""], [collection, []]));
  }

  async writeServerState(update: ServerUpdate): Promise<void> {
    for (const e of update.entities) {
      if (e.collection !== update.collection) {
        throw new Error(`entity ${e.entity_id} is in ${e.collection}, not ${update.collection}`);
      }
    }
    const tx = this.db.transaction(["entities", "cursors"], "readwrite");
    const entities = tx.objectStore("entities");
    const pending: Promise<unknown>[] = [];
    if (update.replace) {
      pending.push(
        entities.delete(IDBKeyRange.bound([update.collection, ""], [update.collection, []])),
      );
    }
    for (const e of update.entities) pending.push(entities.put(e));
    if (update.cursor !== undefined) {
      const cursors = tx.objectStore("cursors");
      pending.push(
        update.cursor === null
          ? cursors.delete(update.collection)
          : cursors.put({ collection: update.collection, cursor: update.cursor }),
      );
    }
    await Promise.all([...pending, tx.done]);
  }

  async putOps(records: OutboxRecord[]): Promise<void> {
    const tx = this.db.transaction("outbox", "readwrite");
    await Promise.all([...records.map((r) => tx.store.put(r)), tx.done]);
  }

  async getOp(opId: string): Promise<OutboxRecord | undefined> {
    return this.db.get("outbox", opId);
  }

  async listOps(): Promise<OutboxRecord[]> {
    return this.db.getAllFromIndex("outbox", "by_seq");
  }

  async deleteOps(opIds: string[]): Promise<void> {
    const tx = this.db.transaction("outbox", "readwrite");
    await Promise.all([...opIds.map((id) => tx.store.delete(id)), tx.done]);
  }

  async getCursor(collection: string): Promise<Cursor | null> {
    return (await this.db.get("cursors", collection))?.cursor ?? null;
  }

  async setCursor(collection: string, cursor: Cursor | null): Promise<void> {
    if (cursor === null) await this.db.delete("cursors", collection);
    else await this.db.put("cursors", { collection, cursor });
  }

  async getMeta<T>(key: string): Promise<T | undefined> {
    return (await this.db.get("meta", key))?.value as T | undefined;
  }

  async setMeta(key: string, value: unknown): Promise<void> {
    await this.db.put("meta", { key, value });
  }

  close(): void {
    this.db.close();
  }
}
