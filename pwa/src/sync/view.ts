/**
 * The task list the UI shows, built from the replica and the outbox: per task, the
 * server state with the unconfirmed ops applied (see `replica.ts`), plus a hint for every
 * op of ours that lost to another device.
 */
import type { EntityState } from "../generated/schemas";
import type { OutboxRecord } from "../store/types";
import { localRecord, type Replica } from "./replica";

export const TASKS = "tasks";

/** Ops in these states are shown in the local view (the user's edits not yet confirmed). */
export const OVERLAID: readonly OutboxRecord["status"][] = [
  "pending",
  "inflight",
  "retrying",
  "sent",
];

export interface ConflictHint {
  /** The conflicted op (apply again / dismiss act on it). */
  opId: string;
  /** What the server kept, quoted for the hint: `'Buy oat milk'`, `done`, `the deletion`. */
  kept: string;
}

export interface TaskView {
  id: string;
  title: string;
  done: boolean;
  /** Deleted (shown only while a conflict hint explains it). */
  deleted: boolean;
  /** Has edits the server has not accepted yet. */
  unsynced: boolean;
  conflicts: ConflictHint[];
}

function quote(value: unknown): string {
  if (typeof value === "string") return `'${value}'`;
  if (typeof value === "boolean") return value ? "done" : "not done";
  return JSON.stringify(value);
}

const titleFirst = (a: string, b: string): number =>
  a === "title" ? -1 : b === "title" ? 1 : a.localeCompare(b);

/** What the server kept instead of a conflicted op, for "kept … from another device". */
export function keptText(
  r: OutboxRecord,
  server: EntityState | undefined,
  clientId: string,
): string {
  const detail = r.conflict?.fields;
  if (detail) {
    const names = Object.keys(detail).sort(titleFirst);
    const f = detail[names[0] ?? ""];
    if (f !== undefined) return f.winner.deleted ? "the deletion" : quote(f.winner.value);
  }
  if (server === undefined) return "another change";
  if (server.deleted) return "the deletion";
  const names =
    r.op.kind === "delete" ? Object.keys(server.fields) : Object.keys(r.op.fields ?? {});
  for (const name of names.sort(titleFirst)) {
    const reg = server.fields[name];
    if (reg !== undefined && reg.client_id !== clientId) return quote(reg.value);
  }
  return "another change";
}

/** The task list, ordered by entity id (ids start with their creation time). */
export function buildTasks(
  replica: Replica,
  records: OutboxRecord[],
  clientId: string,
): TaskView[] {
  const mine = records.filter((r) => r.op.collection === TASKS);
  const overlay = mine.filter((r) => OVERLAID.includes(r.status));
  const conflicted = mine.filter((r) => r.status === "conflicted");
  const ids = new Set<string>(replica.list(TASKS).map((e) => e.entity_id));
  for (const r of [...overlay, ...conflicted]) ids.add(r.op.entity_id);
  const ops = overlay.map((r) => r.op);
  const out: TaskView[] = [];
  for (const id of [...ids].sort()) {
    const server = replica.get(TASKS, id);
    const record = localRecord(TASKS, id, server, ops);
    const conflicts = conflicted
      .filter((r) => r.op.entity_id === id)
      .map((r) => ({ opId: r.op.op_id, kept: keptText(r, server, clientId) }));
    const deleted = record === null || record.deleted;
    if (deleted && conflicts.length === 0) continue;
    const title =
      record?.fields.title?.value ??
      server?.fields.title?.value ??
      conflicted.find((r) => r.op.entity_id === id)?.op.fields?.title;
    out.push({
      id,
      title: typeof title === "string" ? title : "",
      done: record?.fields.done?.value === (true as unknown),
      deleted,
      unsynced: overlay.some((r) => r.op.entity_id === id && r.status !== "sent"),
      conflicts,
    });
  }
  return out;
}
