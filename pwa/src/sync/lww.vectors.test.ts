/**
 * The shared LWW vectors (schemas/vectors/lww.json, format in schemas/vectors/README.md):
 * the Python implementation passes the same file, so both agree on every case.
 */
import { describe, expect, it } from "vitest";
import vectorsJson from "../../../schemas/vectors/lww.json";
import type { Conflict, EntityState, OpRecord, Receipt } from "../generated/schemas";
import { applyOp, content, publicState, type EntityRecord } from "./lww";

interface VectorCase {
  name: string;
  description: string;
  rules: string[];
  same_content_as: string | null;
  initial: (EntityState & { applied_op_ids?: string[] }) | null;
  ops: OpRecord[];
  expected: {
    state: EntityState | null;
    receipts: Pick<Receipt, "op_id" | "status" | "version" | "lost_fields">[];
    conflicts: Pick<Conflict, "op_id" | "client_id" | "fields">[];
  };
}

interface Vectors {
  format_version: number;
  rules: Record<string, string>;
  cases: VectorCase[];
}

const vectors = vectorsJson as unknown as Vectors;

function run(c: VectorCase) {
  let record: EntityRecord | null =
    c.initial === null ? null : { ...c.initial, applied_op_ids: c.initial.applied_op_ids ?? [] };
  const receipts: VectorCase["expected"]["receipts"] = [];
  const conflicts: VectorCase["expected"]["conflicts"] = [];
  for (const op of c.ops) {
    const result = applyOp(record, op);
    record = result.record;
    const { op_id, status, version, lost_fields } = result.receipt;
    receipts.push({ op_id, status, version, lost_fields });
    if (result.conflict !== null) {
      const { op_id: id, client_id, fields } = result.conflict;
      conflicts.push({ op_id: id, client_id, fields });
    }
  }
  return { record, receipts, conflicts };
}

describe("shared LWW vectors", () => {
  it("are in the format this test understands", () => {
    expect(vectors.format_version).toBe(1);
    expect(vectors.cases.length).toBeGreaterThan(0);
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const { record, receipts, conflicts } = run(c);
    expect(record === null ? null : publicState(record)).toEqual(c.expected.state);
    expect(receipts).toEqual(c.expected.receipts);
    expect(conflicts).toEqual(c.expected.conflicts);
  });

  const paired = vectors.cases.filter((c) => c.same_content_as !== null);
  it.each(paired.map((c) => [c.name, c.same_content_as, c] as const))(
    "%s ends with the same content as %s",
    (_name, otherName, c) => {
      const other = vectors.cases.find((o) => o.name === otherName);
      expect(other).toBeDefined();
      expect(content(run(c).record)).toEqual(content(run(other as VectorCase).record));
    },
  );
});
