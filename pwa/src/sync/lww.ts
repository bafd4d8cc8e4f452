/**
 * Last-writer-wins apply, identical in behaviour to Python's `streams/lww.py` and checked
 * against the shared vectors in `schemas/vectors/lww.json`. Pure functions on plain data:
 * inputs are never mutated; an unchanged record comes back as the same object.
 *
 *     op ──► invalid? ──yes──► invalid   (no change, not remembered)
 *              │ no
 *              ▼
 *            seen op_id? ──yes──► duplicate   (no change)
 *              │ no
 *              ▼
 *     upsert, per field f (hlc h):              delete (hlc h):
 *       h <= deleted_hlc      → f lost (delete)   h <= deleted_hlc → stale
 *       no register, h > reg  → f won               otherwise        → deleted_hlc = h,
 *       otherwise             → f lost (reg)          drop registers older than h;
 *     all won → applied                               the rest survive (lost_fields)
 *     some    → partial                             none survive → applied
 *     none    → stale                               some survive → partial
 *
 *     absent ──upsert/delete──► present (version 1)
 *     present: applied/partial ──► version + 1; stale/duplicate/invalid ──► version kept
 *
 * Conflicts name only losses to ANOTHER client; a delete losing to a delete is none.
 */
import type {
  Conflict,
  ConflictField,
  EntityState,
  FieldRegister,
  OpRecord,
  Receipt,
  ReceiptStatus,
} from "../generated/schemas";
import { parseHlc } from "./hlc";
import { pyRepr } from "./pyrepr";

/** How many recent op ids each entity remembers to detect re-delivered ops. */
export const DEDUPE_WINDOW = 256;

/** The stored record of one entity: the public state plus the recent op-id window. */
export interface EntityRecord extends EntityState {
  applied_op_ids: string[];
}

/** What {@link applyOp} returns; the same JSON shape as Python's `ApplyResult.to_dict()`. */
export interface ApplyResult {
  /** The entity after the op (null only for an invalid op on a missing entity). */
  record: EntityRecord | null;
  receipt: Receipt;
  /** Losses to another client, or null. */
  conflict: Conflict | null;
  /** True iff the content (fields or deletion) changed. */
  changed: boolean;
}

type Registers = Record<string, FieldRegister>;
type Deletion = { hlc: string; by: string; opId: string } | null;
// The generated type of a JSON value is looser than reality; values pass through as-is.
type AnyValue = FieldRegister["value"];

function invalidReason(record: EntityRecord | null, op: OpRecord): string | null {
  const prefix = `op ${pyRepr(op.op_id)} rejected:`;
  let node: string;
  try {
    node = parseHlc(op.hlc).node;
  } catch (err) {
    return `${prefix} ${(err as Error).message}; stamp every op with the client's HLC`;
  }
  if (node !== op.client_id) {
    return (
      `${prefix} hlc node ${pyRepr(node)} is not the client_id ${pyRepr(op.client_id)}; ` +
      "stamp ops with an HLC whose node is the authoring client's id"
    );
  }
  const fields = op.fields ?? null;
  if (op.kind === "upsert" && (fields === null || Object.keys(fields).length === 0)) {
    return (
      `${prefix} upsert sets no fields; send at least one field, ` +
      "or kind 'delete' to delete the entity"
    );
  }
  if (op.kind === "delete" && fields !== null) {
    return `${prefix} delete carries fields; omit 'fields' (or send null) for a delete`;
  }
  if (record !== null) {
    const target = [op.tenant, op.collection, op.entity_id].join("/");
    const stored = [record.tenant, record.collection, record.entity_id].join("/");
    if (target !== stored) {
      return (
        `${prefix} it targets ${pyRepr(target)} but was applied to entity ` +
        `${pyRepr(stored)}; key ops by {tenant}/{collection}/{entity_id}`
      );
    }
  }
  return null;
}

function seen(record: EntityRecord, opId: string): boolean {
  return (
    record.applied_op_ids.includes(opId) ||
    record.deleted_op_id === opId ||
    Object.values(record.fields).some((reg) => reg !== undefined && reg.op_id === opId)
  );
}

function registersOf(record: EntityRecord | null): Registers {
  const out: Registers = {};
  if (record === null) return out;
  for (const [name, reg] of Object.entries(record.fields)) if (reg !== undefined) out[name] = reg;
  return out;
}

function deletionOf(record: EntityRecord | null): Deletion {
  if (record === null || record.deleted_hlc === null) return null;
  return { hlc: record.deleted_hlc, by: record.deleted_by ?? "", opId: record.deleted_op_id ?? "" };
}

function receiptOf(
  op: OpRecord,
  status: ReceiptStatus,
  version: number | null,
  lostFields: string[] = [],
  reason: string | null = null,
): Receipt {
  return {
    op_id: op.op_id,
    tenant: op.tenant,
    client_id: op.client_id,
    user_id: op.user_id,
    collection: op.collection,
    entity_id: op.entity_id,
    kind: op.kind,
    hlc: op.hlc,
    status,
    version,
    lost_fields: lostFields,
    reason,
    received_at_ms: op.received_at_ms,
  };
}

function winnerOf(reg: FieldRegister): ConflictField["winner"] {
  return {
    value: reg.value,
    hlc: reg.hlc,
    client_id: reg.client_id,
    op_id: reg.op_id,
    deleted: false,
  };
}

/** Fold `op` into `record` (null if the entity does not exist yet). Never throws. */
export function applyOp(record: EntityRecord | null, op: OpRecord): ApplyResult {
  const reason = invalidReason(record, op);
  if (reason !== null) {
    const version = record === null ? null : record.version;
    return {
      record,
      receipt: receiptOf(op, "invalid", version, [], reason),
      conflict: null,
      changed: false,
    };
  }
  if (record !== null && seen(record, op.op_id)) {
    return {
      record,
      receipt: receiptOf(op, "duplicate", record.version),
      conflict: null,
      changed: false,
    };
  }
  return op.kind === "upsert" ? applyUpsert(record, op) : applyDelete(record, op);
}

function applyUpsert(record: EntityRecord | null, op: OpRecord): ApplyResult {
  const fields = registersOf(record);
  const deletion = deletionOf(record);
  const won: string[] = [];
  const lost: string[] = [];
  const conflicts: Record<string, ConflictField> = {};
  for (const [name, raw] of Object.entries(op.fields ?? {})) {
    const value = raw as AnyValue;
    const yours = { value, hlc: op.hlc, deleted: false };
    const current = fields[name];
    if (deletion !== null && op.hlc <= deletion.hlc) {
      lost.push(name);
      if (deletion.by !== op.client_id) {
        const winner = {
          value: null as unknown as AnyValue,
          hlc: deletion.hlc,
          client_id: deletion.by,
          op_id: deletion.opId,
          deleted: true,
        };
        conflicts[name] = { yours, winner };
      }
    } else if (current === undefined || op.hlc > current.hlc) {
      fields[name] = { value, hlc: op.hlc, client_id: op.client_id, op_id: op.op_id };
      won.push(name);
    } else {
      lost.push(name);
      if (current.client_id !== op.client_id)
        conflicts[name] = { yours, winner: winnerOf(current) };
    }
  }
  const status: ReceiptStatus =
    lost.length === 0 ? "applied" : won.length > 0 ? "partial" : "stale";
  return result(record, op, status, lost, conflicts, fields, deletion, won.length > 0);
}

function applyDelete(record: EntityRecord | null, op: OpRecord): ApplyResult {
  const deletion = deletionOf(record);
  const fields = registersOf(record);
  if (deletion !== null && op.hlc <= deletion.hlc) {
    // Lost to a newer delete: the entity is deleted as its author wanted, so no conflict.
    return result(record, op, "stale", Object.keys(fields), {}, fields, deletion, false);
  }
  const survivors: Registers = {};
  for (const [name, reg] of Object.entries(fields)) if (reg.hlc >= op.hlc) survivors[name] = reg;
  const yours = { value: null as unknown as AnyValue, hlc: op.hlc, deleted: true };
  const conflicts: Record<string, ConflictField> = {};
  for (const [name, reg] of Object.entries(survivors)) {
    if (reg.client_id !== op.client_id) conflicts[name] = { yours, winner: winnerOf(reg) };
  }
  const status: ReceiptStatus = Object.keys(survivors).length > 0 ? "partial" : "applied";
  const newDeletion = { hlc: op.hlc, by: op.client_id, opId: op.op_id };
  return result(
    record,
    op,
    status,
    Object.keys(survivors),
    conflicts,
    survivors,
    newDeletion,
    true,
  );
}

function result(
  record: EntityRecord | null,
  op: OpRecord,
  status: ReceiptStatus,
  lost: string[],
  conflicts: Record<string, ConflictField>,
  fields: Registers,
  deletion: Deletion,
  changed: boolean,
): ApplyResult {
  const previous = record === null ? [] : record.applied_op_ids;
  const appliedOpIds = [...previous, op.op_id].slice(-DEDUPE_WINDOW);
  let next: EntityRecord;
  if (record === null || changed) {
    next = {
      tenant: op.tenant,
      collection: op.collection,
      entity_id: op.entity_id,
      version: record === null ? 1 : record.version + 1,
      fields: sortedRegisters(fields),
      deleted_hlc: deletion?.hlc ?? null,
      deleted_by: deletion?.by ?? null,
      deleted_op_id: deletion?.opId ?? null,
      deleted: deletion !== null && Object.keys(fields).length === 0,
      last_op_id: op.op_id,
      received_at_ms: op.received_at_ms,
      applied_op_ids: appliedOpIds,
    };
  } else {
    next = { ...record, applied_op_ids: appliedOpIds };
  }
  const lostFields = [...lost].sort();
  const conflict: Conflict | null =
    Object.keys(conflicts).length === 0
      ? null
      : {
          op_id: op.op_id,
          tenant: op.tenant,
          client_id: op.client_id,
          user_id: op.user_id,
          collection: op.collection,
          entity_id: op.entity_id,
          kind: op.kind,
          hlc: op.hlc,
          version: next.version,
          received_at_ms: op.received_at_ms,
          fields: conflicts,
        };
  return {
    record: next,
    receipt: receiptOf(op, status, next.version, lostFields),
    conflict,
    changed,
  };
}

function sortedRegisters(fields: Registers): Registers {
  const out: Registers = {};
  for (const name of Object.keys(fields).sort()) out[name] = fields[name] as FieldRegister;
  return out;
}

/** The public EntityState of a record (without its dedupe bookkeeping). */
export function publicState(record: EntityRecord): EntityState {
  const { applied_op_ids: _bookkeeping, ...state } = record;
  return state;
}

/** A record for a server state (the op-id window starts empty on the client). */
export function recordFromState(state: EntityState): EntityRecord {
  return { ...state, applied_op_ids: [] };
}

/** Fields and deletion only: what every arrival order of the same ops agrees on. */
export function content(
  record: EntityRecord | null,
): Pick<EntityState, "fields" | "deleted_hlc" | "deleted_by" | "deleted_op_id"> | null {
  if (record === null) return null;
  return {
    fields: sortedRegisters(registersOf(record)),
    deleted_hlc: record.deleted_hlc,
    deleted_by: record.deleted_by,
    deleted_op_id: record.deleted_op_id,
  };
}
