/**
 * The Store contract: one suite, run against every implementation (memory.test.ts,
 * idb.test.ts), the way Replicache tests its stores.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EntityState } from "../generated/schemas";
import type { OutboxRecord, Store } from "./types";

export interface StoreHarness {
  /** A new, empty store. */
  create(): Promise<Store>;
  /** Close `store` and open the same underlying data again (a reload). */
  reopen(store: Store): Promise<Store>;
}

export function entity(collection: string, id: string, version = 1, title = id): EntityState {
  return {
    tenant: "acme",
    collection,
    entity_id: id,
    version,
    fields: {
      title: {
        value: title as never,
        hlc: "000000000000010-0000-a",
        client_id: "a",
        op_id: `op-${id}`,
      },
    },
    deleted_hlc: null,
    deleted_by: null,
    deleted_op_id: null,
    deleted: false,
    last_op_id: `op-${id}`,
    received_at_ms: 1,
  };
}

export function outboxRecord(
  opId: string,
  seq: number,
  status: OutboxRecord["status"] = "pending",
): OutboxRecord {
  return {
    op: {
      op_id: opId,
      client_id: "a",
      collection: "tasks",
      entity_id: `t-${opId}`,
      kind: "upsert",
      fields: { title: "x", nested: { list: [1, "two", null] } },
      hlc: "000000000000010-0000-a",
    },
    seq,
    status,
    attempts: 0,
    next_attempt_at: null,
    error: null,
    conflict: null,
    receipt_status: null,
    created_at: 1,
    updated_at: 1,
  };
}

export function describeStoreContract(name: string, harness: StoreHarness): void {
  describe(`${name} store contract`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await harness.create();
    });
    afterEach(() => {
      store.close();
    });

    describe("server entities", () => {
      it("returns undefined and an empty list for a collection never written", async () => {
        expect(await store.getEntity("tasks", "t1")).toBeUndefined();
        expect(await store.listEntities("tasks")).toEqual([]);
      });

      it("upserts entities and lists them in entity id order", async () => {
        await store.writeServerState({
          collection: "tasks",
          replace: false,
          entities: [entity("tasks", "b"), entity("tasks", "a"), entity("tasks", "c")],
        });
        await store.writeServerState({
          collection: "tasks",
          replace: false,
          entities: [entity("tasks", "b", 2, "B")],
        });
        const list = await store.listEntities("tasks");
        expect(list.map((e) => e.entity_id)).toEqual(["a", "b", "c"]);
        expect(await store.getEntity("tasks", "b")).toEqual(entity("tasks", "b", 2, "B"));
      });

      it("keeps collections apart", async () => {
        await store.writeServerState({
          collection: "tasks",
          replace: false,
          entities: [entity("tasks", "a")],
        });
        await store.writeServerState({
          collection: "notes",
          replace: false,
          entities: [entity("notes", "a", 5)],
        });
        expect((await store.getEntity("tasks", "a"))?.version).toBe(1);
        expect((await store.getEntity("notes", "a"))?.version).toBe(5);
        expect(await store.listEntities("notes")).toHaveLength(1);
      });

      it("replaces a whole collection without touching the others", async () => {
        await store.writeServerState({
          collection: "tasks",
          replace: false,
          entities: [entity("tasks", "a"), entity("tasks", "b")],
        });
        await store.writeServerState({
          collection: "tasksx",
          replace: false,
          entities: [entity("tasksx", "z")],
        });
        await store.writeServerState({
          collection: "tasks",
          replace: true,
          entities: [entity("tasks", "c")],
        });
        expect((await store.listEntities("tasks")).map((e) => e.entity_id)).toEqual(["c"]);
        expect(await store.listEntities("tasksx")).toHaveLength(1);
      });

      it("writes the cursor with the entities, keeps it when undefined and clears it when null", async () => {
        await store.writeServerState({
          collection: "tasks",
          replace: true,
          entities: [],
          cursor: "c1",
        });
        expect(await store.getCursor("tasks")).toBe("c1");
        await store.writeServerState({
          collection: "tasks",
          replace: false,
          entities: [entity("tasks", "a")],
        });
        expect(await store.getCursor("tasks")).toBe("c1");
        await store.writeServerState({
          collection: "tasks",
          replace: false,
          entities: [],
          cursor: null,
        });
        expect(await store.getCursor("tasks")).toBeNull();
      });

      it("refuses an entity of another collection and writes nothing", async () => {
        await expect(
          store.writeServerState({
            collection: "tasks",
            replace: false,
            entities: [entity("notes", "a")],
            cursor: "c9",
          }),
        ).rejects.toThrow(/notes/);
        expect(await store.listEntities("notes")).toEqual([]);
        expect(await store.getCursor("tasks")).toBeNull();
      });

      it("hands out copies, so mutating a result changes nothing stored", async () => {
        const e = entity("tasks", "a");
        await store.writeServerState({ collection: "tasks", replace: false, entities: [e] });
        e.version = 99;
        const got = await store.getEntity("tasks", "a");
        expect(got?.version).toBe(1);
        if (got) got.version = 42;
        expect((await store.getEntity("tasks", "a"))?.version).toBe(1);
      });
    });

    describe("outbox", () => {
      it("lists ops in seq order whatever the insertion order", async () => {
        await store.putOps([outboxRecord("o3", 30), outboxRecord("o1", 10)]);
        await store.putOps([outboxRecord("o2", 20)]);
        expect((await store.listOps()).map((r) => r.op.op_id)).toEqual(["o1", "o2", "o3"]);
      });

      it("replaces a record with the same op id and round-trips nested JSON", async () => {
        await store.putOps([outboxRecord("o1", 10)]);
        const updated = {
          ...outboxRecord("o1", 10, "retrying"),
          attempts: 2,
          next_attempt_at: 1234,
        };
        updated.error = { code: "http_503", message: "busy", http_status: 503, retriable: true };
        await store.putOps([updated]);
        expect(await store.getOp("o1")).toEqual(updated);
        expect(await store.listOps()).toHaveLength(1);
      });

      it("deletes ops by id and ignores unknown ids", async () => {
        await store.putOps([outboxRecord("o1", 1), outboxRecord("o2", 2)]);
        await store.deleteOps(["o1", "nope"]);
        expect((await store.listOps()).map((r) => r.op.op_id)).toEqual(["o2"]);
        expect(await store.getOp("o1")).toBeUndefined();
      });
    });

    describe("cursors and meta", () => {
      it("stores one cursor per collection", async () => {
        expect(await store.getCursor("tasks")).toBeNull();
        await store.setCursor("tasks", "abc");
        await store.setCursor("notes", "def");
        expect(await store.getCursor("tasks")).toBe("abc");
        await store.setCursor("tasks", null);
        expect(await store.getCursor("tasks")).toBeNull();
        expect(await store.getCursor("notes")).toBe("def");
      });

      it("round-trips JSON meta values and answers undefined for a missing key", async () => {
        expect(await store.getMeta("hlc")).toBeUndefined();
        await store.setMeta("hlc", "000000000000010-0000-a");
        await store.setMeta("obj", { a: [1, { b: true }] });
        expect(await store.getMeta<string>("hlc")).toBe("000000000000010-0000-a");
        expect(await store.getMeta("obj")).toEqual({ a: [1, { b: true }] });
      });
    });

    it("keeps everything across a close and reopen", async () => {
      await store.writeServerState({
        collection: "tasks",
        replace: false,
        entities: [entity("tasks", "a")],
        cursor: "c7",
      });
      await store.putOps([outboxRecord("o1", 1, "retrying"), outboxRecord("o2", 2)]);
      await store.setMeta("client_id", "web-1");
      store = await harness.reopen(store);
      expect(await store.getEntity("tasks", "a")).toEqual(entity("tasks", "a"));
      expect(await store.getCursor("tasks")).toBe("c7");
      expect((await store.listOps()).map((r) => [r.op.op_id, r.status])).toEqual([
        ["o1", "retrying"],
        ["o2", "pending"],
      ]);
      expect(await store.getMeta("client_id")).toBe("web-1");
    });
  });
}
