import { describe, expect, it } from "vitest";
import type { OpRecord } from "../generated/schemas";
import { formatHlc } from "./hlc";
import { DEDUPE_WINDOW, applyOp, content, publicState, type EntityRecord } from "./lww";

let n = 0;
function op(
  client: string,
  wall: number,
  kind: "upsert" | "delete",
  fields?: Record<string, unknown> | null,
  extra: Partial<OpRecord> = {},
): OpRecord {
  n += 1;
  return {
    op_id: `op-${n}`,
    client_id: client,
    collection: "tasks",
    entity_id: "t1",
    kind,
    fields: kind === "upsert" ? (fields ?? null) : (fields ?? null),
    hlc: formatHlc(wall, 0, client),
    tenant: "acme",
    user_id: "u",
    received_at_ms: 1000 + n,
    ...extra,
  };
}

function fold(...ops: OpRecord[]): EntityRecord | null {
  let record: EntityRecord | null = null;
  for (const o of ops) record = applyOp(record, o).record;
  return record;
}

describe("applyOp upserts", () => {
  it("creates an absent entity at version 1 with one register per field", () => {
    const o = op("a", 10, "upsert", { title: "milk", done: false });
    const r = applyOp(null, o);
    expect(r.receipt.status).toBe("applied");
    expect(r.changed).toBe(true);
    expect(r.record?.version).toBe(1);
    expect(r.record?.fields.title).toEqual({
      value: "milk",
      hlc: o.hlc,
      client_id: "a",
      op_id: o.op_id,
    });
    expect(r.record?.deleted).toBe(false);
    expect(r.record?.applied_op_ids).toEqual([o.op_id]);
    expect(r.conflict).toBeNull();
  });

  it("lets a newer write win per field, so concurrent edits to different fields both survive", () => {
    const rec = fold(
      op("a", 10, "upsert", { title: "x", done: false }),
      op("b", 20, "upsert", { done: true }),
    );
    const r = applyOp(rec, op("a", 15, "upsert", { title: "y", done: false }));
    expect(r.receipt.status).toBe("partial");
    expect(r.receipt.lost_fields).toEqual(["done"]);
    expect(r.record?.fields.title?.value).toBe("y");
    expect(r.record?.fields.done?.value).toBe(true);
    expect(r.record?.version).toBe(3);
    expect(Object.keys(r.conflict?.fields ?? {})).toEqual(["done"]);
    expect(r.conflict?.fields.done?.winner).toMatchObject({
      value: true,
      client_id: "b",
      deleted: false,
    });
  });

  it("reports a stale write with no version bump and a conflict naming the other client's winner", () => {
    const rec = fold(op("b", 20, "upsert", { title: "Buy oat milk" }));
    const r = applyOp(rec, op("a", 10, "upsert", { title: "Buy milk" }));
    expect(r.receipt.status).toBe("stale");
    expect(r.changed).toBe(false);
    expect(r.record?.version).toBe(1);
    expect(r.conflict?.fields.title).toEqual({
      yours: { value: "Buy milk", hlc: formatHlc(10, 0, "a"), deleted: false },
      winner: expect.objectContaining({ value: "Buy oat milk", client_id: "b" }),
    });
  });

  it("does not call a loss to the same client's own newer write a conflict", () => {
    const rec = fold(op("a", 20, "upsert", { title: "new" }));
    const r = applyOp(rec, op("a", 10, "upsert", { title: "old" }));
    expect(r.receipt.status).toBe("stale");
    expect(r.conflict).toBeNull();
  });

  it("keeps the first of two writes with equal HLCs", () => {
    const first = op("a", 10, "upsert", { title: "first" });
    const second = op("a", 10, "upsert", { title: "second" });
    const rec = fold(first, second);
    expect(rec?.fields.title?.value).toBe("first");
  });
});

describe("applyOp deletes", () => {
  it("clears older registers and marks the entity deleted", () => {
    const rec = fold(op("a", 10, "upsert", { title: "x" }));
    const r = applyOp(rec, op("b", 20, "delete"));
    expect(r.receipt.status).toBe("applied");
    expect(r.record?.deleted).toBe(true);
    expect(r.record?.fields).toEqual({});
    expect(r.record?.deleted_by).toBe("b");
    expect(r.record?.version).toBe(2);
    expect(r.conflict).toBeNull();
  });

  it("is partial when newer registers survive, with a conflict for another client's survivor", () => {
    const rec = fold(op("a", 10, "upsert", { title: "x" }), op("b", 30, "upsert", { done: true }));
    const r = applyOp(rec, op("a", 20, "delete"));
    expect(r.receipt.status).toBe("partial");
    expect(r.receipt.lost_fields).toEqual(["done"]);
    expect(r.record?.deleted).toBe(false);
    expect(Object.keys(r.record?.fields ?? {})).toEqual(["done"]);
    expect(r.conflict?.fields.done?.yours).toEqual({
      value: null,
      hlc: formatHlc(20, 0, "a"),
      deleted: true,
    });
  });

  it("is stale without a conflict when it loses to a newer delete", () => {
    const rec = fold(op("b", 30, "delete"));
    const r = applyOp(rec, op("a", 20, "delete"));
    expect(r.receipt.status).toBe("stale");
    expect(r.conflict).toBeNull();
    expect(r.record?.deleted_by).toBe("b");
    expect(r.record?.version).toBe(1);
  });

  it("makes an older upsert lose to it, and lets a newer upsert re-create the entity", () => {
    const rec = fold(op("a", 10, "upsert", { title: "x", done: false }), op("b", 20, "delete"));
    const lost = applyOp(rec, op("a", 15, "upsert", { title: "y" }));
    expect(lost.receipt.status).toBe("stale");
    expect(lost.conflict?.fields.title?.winner).toMatchObject({
      deleted: true,
      client_id: "b",
      value: null,
    });
    const revived = applyOp(lost.record, op("a", 25, "upsert", { title: "z" }));
    expect(revived.receipt.status).toBe("applied");
    expect(revived.record?.deleted).toBe(false);
    expect(Object.keys(revived.record?.fields ?? {})).toEqual(["title"]);
  });

  it("creates a deleted record at version 1 for an unknown entity", () => {
    const r = applyOp(null, op("a", 10, "delete"));
    expect(r.receipt.status).toBe("applied");
    expect(r.record).toMatchObject({ version: 1, deleted: true });
  });
});

describe("applyOp duplicates and invalid ops", () => {
  it("answers a re-delivered op with duplicate and returns the same record", () => {
    const o = op("a", 10, "upsert", { title: "x" });
    const rec = fold(o, op("b", 20, "upsert", { title: "y" }));
    const r = applyOp(rec, o);
    expect(r.receipt.status).toBe("duplicate");
    expect(r.record).toBe(rec);
    expect(r.receipt.version).toBe(2);
  });

  it("remembers only the last 256 op ids but still sees a current register's op id", () => {
    const first = op("a", 1, "upsert", { keep: 1 });
    let rec = fold(first);
    for (let i = 0; i < DEDUPE_WINDOW + 5; i++)
      rec = applyOp(rec, op("a", 10 + i, "upsert", { n: i })).record;
    expect(rec?.applied_op_ids).toHaveLength(DEDUPE_WINDOW);
    expect(rec?.applied_op_ids).not.toContain(first.op_id);
    expect(applyOp(rec, first).receipt.status).toBe("duplicate");
  });

  it.each([
    ["an upsert with no fields", op("a", 10, "upsert", {}), /upsert sets no fields/],
    ["a delete with fields", op("a", 10, "delete", { title: "x" }), /delete carries fields/],
    [
      "an hlc node that is not the client",
      op("a", 10, "upsert", { t: 1 }, { client_id: "b" }),
      /is not the client_id/,
    ],
    [
      "a malformed hlc",
      op("a", 10, "upsert", { t: 1 }, { hlc: "yesterday" }),
      /invalid hlc 'yesterday'/,
    ],
    [
      "another entity's op",
      op("a", 10, "upsert", { t: 1 }, { entity_id: "t2" }),
      /targets 'acme\/tasks\/t2'/,
    ],
  ])("rejects %s as invalid without changing anything", (_name, bad, reason) => {
    const rec = fold(op("a", 5, "upsert", { title: "x" }));
    const r = applyOp(rec, bad);
    expect(r.receipt.status).toBe("invalid");
    expect(r.receipt.reason).toMatch(reason);
    expect(r.record).toBe(rec);
    expect(r.changed).toBe(false);
  });

  it("rejects an invalid op on a missing entity with a null record and version", () => {
    const r = applyOp(null, op("a", 10, "upsert", {}));
    expect(r.record).toBeNull();
    expect(r.receipt.version).toBeNull();
  });
});

describe("merged content", () => {
  it("is the same for every arrival order of the same ops", () => {
    const ops = [
      op("a", 10, "upsert", { title: "a1", done: false }),
      op("b", 12, "upsert", { title: "b1" }),
      op("c", 11, "delete"),
      op("a", 14, "upsert", { done: true }),
      op("b", 13, "delete"),
      op("c", 15, "upsert", { title: "c1" }),
    ];
    const expected = content(fold(...ops));
    let seed = 7;
    const rand = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (let i = 0; i < 50; i++) {
      const shuffled = [...ops].sort(() => rand() - 0.5);
      const twice = [...shuffled, ...shuffled.slice(0, 3)];
      expect(content(fold(...twice))).toEqual(expected);
    }
  });

  it("publicState drops the dedupe window", () => {
    const rec = fold(op("a", 10, "upsert", { title: "x" }));
    expect(rec && "applied_op_ids" in publicState(rec)).toBe(false);
  });
});
