/**
 * Pure decisions about what the server's word means for one of our ops: a receipt, a
 * newer entity state (when the receipt was missed), a conflict report. The outbox
 * applies them; nothing here does I/O.
 */
import type { Conflict, EntityState, Op, Receipt } from "../generated/schemas";

export type ReceiptOutcome =
  { to: "reconciled" } | { to: "conflicted" } | { to: "failed"; reason: string };

/** Whether a lost field (or, for a delete, a survivor) is held by another client. */
export function lostToAnotherClient(
  op: Op,
  lostFields: string[],
  entity: EntityState,
  clientId: string,
): boolean {
  if (op.kind === "delete") {
    return lostFields.some((f) => {
      const reg = entity.fields[f];
      return reg !== undefined && reg.client_id !== clientId;
    });
  }
  return lostFields.some((f) => {
    const reg = entity.fields[f];
    if (reg !== undefined && reg.hlc > op.hlc) return reg.client_id !== clientId;
    if (entity.deleted_hlc !== null && op.hlc <= entity.deleted_hlc)
      return entity.deleted_by !== clientId;
    return reg !== undefined && reg.client_id !== clientId;
  });
}

/**
 * What a receipt does to an op: applied/duplicate → reconciled; invalid → failed;
 * partial/stale → conflicted if another client's write won (judged from the server state,
 * when known), else reconciled (it lost to this device's own newer write).
 */
export function receiptOutcome(
  op: Op,
  receipt: Pick<Receipt, "status" | "lost_fields" | "reason">,
  entity: EntityState | undefined,
  clientId: string,
): ReceiptOutcome {
  switch (receipt.status) {
    case "applied":
    case "duplicate":
      return { to: "reconciled" };
    case "invalid":
      return { to: "failed", reason: receipt.reason ?? "the server could not apply this change" };
    case "partial":
    case "stale":
      return entity !== undefined && lostToAnotherClient(op, receipt.lost_fields, entity, clientId)
        ? { to: "conflicted" }
        : { to: "reconciled" };
  }
}

/**
 * What a newer server state says about a `sent` op whose receipt may have been missed:
 * `contains` (it was applied), a stale receipt's lost fields (it was wholly superseded),
 * or null (no news: keep waiting).
 */
export function serverStateVerdict(
  op: Op,
  entity: EntityState,
): { contains: true } | { contains: false; lost_fields: string[] } | null {
  if (op.collection !== entity.collection || op.entity_id !== entity.entity_id) return null;
  const contains =
    entity.deleted_op_id === op.op_id ||
    Object.values(entity.fields).some((reg) => reg?.op_id === op.op_id);
  if (contains) return { contains: true };
  const names = Object.keys(op.fields ?? {}).sort();
  const beatenByDelete = entity.deleted_hlc !== null && entity.deleted_hlc >= op.hlc;
  const superseded =
    op.kind === "delete"
      ? entity.deleted_hlc !== null && entity.deleted_hlc > op.hlc
      : names.every((f) => beatenByDelete || (entity.fields[f]?.hlc ?? "") > op.hlc);
  if (!superseded) return null;
  return { contains: false, lost_fields: op.kind === "delete" ? [] : names };
}

/** The op a conflict report is about, rebuilt from it (its `yours` values). */
export function opFromConflict(conflict: Conflict): Op {
  const fields: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(conflict.fields)) {
    if (f !== undefined) fields[name] = f.yours.value;
  }
  return {
    op_id: conflict.op_id,
    client_id: conflict.client_id,
    collection: conflict.collection,
    entity_id: conflict.entity_id,
    kind: conflict.kind,
    fields: conflict.kind === "upsert" ? fields : null,
    hlc: conflict.hlc,
  };
}
