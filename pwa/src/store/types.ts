/**
 * Storage behind one interface, with an IndexedDB implementation (the app) and an
 * in-memory one (tests, and browsers without IndexedDB). One contract suite
 * (`contract.ts`) runs against both.
 */
import type { Conflict, Cursor, EntityState, Op, ReceiptStatus } from "../generated/schemas";

/** Where an op is in its life; see `outbox/outbox.ts` for the state machine. */
export type OpStatus =
  "pending" | "inflight" | "retrying" | "sent" | "reconciled" | "conflicted" | "failed";

/** Why an op is retrying or failed. */
export interface OpError {
  /** Stable code: a problem+json / OpResult code, or `network`, `http_<status>`, `invalid`. */
  code: string;
  message: string;
  /** HTTP status when there was a response. */
  http_status?: number;
  retriable: boolean;
}

/** One op in the durable outbox, with its delivery state. */
export interface OutboxRecord {
  op: Op;
  /** Enqueue order (ops are sent in this order). */
  seq: number;
  status: OpStatus;
  /** How many times the op was put on the wire. */
  attempts: number;
  /** Earliest time (ms since epoch) the next attempt may start, when retrying. */
  next_attempt_at: number | null;
  error: OpError | null;
  /** The server's conflict report, when the op lost to another client. */
  conflict: Conflict | null;
  /** Status of the reconciliation receipt, once one arrived. */
  receipt_status: ReceiptStatus | null;
  created_at: number;
  updated_at: number;
}

/** A change of server state to write atomically together with the new cursor. */
export interface ServerUpdate {
  collection: string;
  /** true: `entities` is the whole collection (drop the rest); false: upsert these. */
  replace: boolean;
  entities: EntityState[];
  /** The new cursor, or undefined to keep the stored one. */
  cursor?: Cursor | null;
}

export interface Store {
  /** Server state of one entity (the last one kept by version). */
  getEntity(collection: string, entityId: string): Promise<EntityState | undefined>;
  /** Every server entity of a collection, ordered by entity id. */
  listEntities(collection: string): Promise<EntityState[]>;
  /** Write server state and cursor in one transaction. */
  writeServerState(update: ServerUpdate): Promise<void>;

  /** Insert or replace outbox records (keyed by op_id). */
  putOps(records: OutboxRecord[]): Promise<void>;
  getOp(opId: string): Promise<OutboxRecord | undefined>;
  /** Every outbox record in enqueue (seq) order. */
  listOps(): Promise<OutboxRecord[]>;
  deleteOps(opIds: string[]): Promise<void>;

  getCursor(collection: string): Promise<Cursor | null>;
  setCursor(collection: string, cursor: Cursor | null): Promise<void>;

  /** Small JSON values: the client id, the HLC's last value, … */
  getMeta<T>(key: string): Promise<T | undefined>;
  setMeta(key: string, value: unknown): Promise<void>;

  close(): void;
}

/** Deep copy of JSON data: what a store hands out must not alias what it keeps. */
export function cloneJson<T>(value: T): T {
  return structuredClone(value);
}
