import { describe, expect, it } from "vitest";
import type { Conflict, EntityState, Op } from "../generated/schemas";
import {
  lostToAnotherClient,
  opFromConflict,
  receiptOutcome,
  serverStateVerdict,
} from "./reconcile";

const ME = "web-a";
const hlc = (wall: number, node: string) => `${String(wall).padStart(15, "0")}-0000-${node}`;
const op: Op = {
  op_id: "o1",
  client_id: ME,
  collection: "tasks",
  entity_id: "t1",
  kind: "upsert",
  fields: { title: "mine", done: true },
  hlc: hlc(20, ME),
};

function entity(fields: Record<string, [number, string]>, deleted?: [number, string]): EntityState {
  return {
    tenant: "acme",
    collection: "tasks",
    entity_id: "t1",
    version: 5,
    fields: Object.fromEntries(
      Object.entries(fields).map(([k, [wall, who]]) => [
        k,
        { value: k as never, hlc: hlc(wall, who), client_id: who, op_id: `op-${who}-${wall}` },
      ]),
    ),
    deleted_hlc: deleted ? hlc(deleted[0], deleted[1]) : null,
    deleted_by: deleted?.[1] ?? null,
    deleted_op_id: deleted ? "del" : null,
    deleted: false,
    last_op_id: "x",
    received_at_ms: 1,
  };
}

describe("receiptOutcome", () => {
  it("reconciles applied and duplicate receipts", () => {
    for (const status of ["applied", "duplicate"] as const) {
      expect(receiptOutcome(op, { status, lost_fields: [], reason: null }, undefined, ME)).toEqual({
        to: "reconciled",
      });
    }
  });

  it("fails an invalid op with the server's reason", () => {
    expect(
      receiptOutcome(op, { status: "invalid", lost_fields: [], reason: "bad hlc" }, undefined, ME),
    ).toEqual({ to: "failed", reason: "bad hlc" });
  });

  it("calls a loss to another device a conflict and a loss to this device reconciled", () => {
    const other = entity({ title: [30, "web-b"], done: [20, ME] });
    const own = entity({ title: [30, ME], done: [20, ME] });
    const receipt = { status: "partial" as const, lost_fields: ["title"], reason: null };
    expect(receiptOutcome(op, receipt, other, ME)).toEqual({ to: "conflicted" });
    expect(receiptOutcome(op, receipt, own, ME)).toEqual({ to: "reconciled" });
  });
});

describe("lostToAnotherClient", () => {
  it("sees a field lost to another client's delete", () => {
    expect(lostToAnotherClient(op, ["title"], entity({}, [40, "web-b"]), ME)).toBe(true);
    expect(lostToAnotherClient(op, ["title"], entity({}, [40, ME]), ME)).toBe(false);
  });

  it("for a delete, looks at the survivors' authors", () => {
    const del: Op = { ...op, kind: "delete", fields: null };
    expect(lostToAnotherClient(del, ["title"], entity({ title: [30, "web-b"] }), ME)).toBe(true);
    expect(lostToAnotherClient(del, [], entity({}), ME)).toBe(false);
  });
});

describe("serverStateVerdict", () => {
  it("says contains when a register or the delete carries the op id", () => {
    const e = entity({ title: [20, ME] });
    e.fields.title!.op_id = "o1";
    expect(serverStateVerdict(op, e)).toEqual({ contains: true });
  });

  it("reports a wholly superseded upsert with its fields as lost", () => {
    expect(serverStateVerdict(op, entity({ title: [30, "web-b"], done: [31, "web-b"] }))).toEqual({
      contains: false,
      lost_fields: ["done", "title"],
    });
  });

  it("has no news while any field of the op may still be pending", () => {
    expect(serverStateVerdict(op, entity({ title: [30, "web-b"] }))).toBeNull();
    expect(serverStateVerdict({ ...op, entity_id: "t9" }, entity({}))).toBeNull();
  });
});

describe("opFromConflict", () => {
  it("rebuilds the losing op from the yours values", () => {
    const conflict: Conflict = {
      op_id: "o1",
      tenant: "acme",
      client_id: ME,
      user_id: "u",
      collection: "tasks",
      entity_id: "t1",
      kind: "upsert",
      hlc: op.hlc,
      version: 3,
      received_at_ms: 1,
      fields: {
        title: {
          yours: { value: "mine" as never, hlc: op.hlc, deleted: false },
          winner: {
            value: "theirs" as never,
            hlc: hlc(30, "web-b"),
            client_id: "web-b",
            op_id: "ob",
            deleted: false,
          },
        },
      },
    };
    expect(opFromConflict(conflict)).toEqual({ ...op, fields: { title: "mine" } });
  });
});
