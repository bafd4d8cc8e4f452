/**
 * The durable op queue. Every op the user makes is stored here first and survives
 * reloads and browser restarts; the outbox delivers it to ingest and follows it until the
 * push service reports how it was reconciled.
 *
 *     pending ──► inflight ──202 accepted/duplicate──► sent ──receipt applied──► reconciled
 *        ▲          │  │                                 │ └──conflict / lost to other──► conflicted
 *        │          │  └─network, 5xx, 429, retriable──► retrying ──(backoff due)──► inflight
 *        │          └─non-retryable 4xx, rejected, invalid receipt, last attempt──► failed
 *        └──────────────────────── retry (user) ───────────────────────────────────┘
 *
 * Retries wait `fullJitterDelay(attempts)` or the server's Retry-After; after
 * `maxAttempts` wire attempts an op is `failed` ("needs attention": retry or discard).
 * Ops are sent in enqueue order in batches of up to 500; a batch refused as a whole with a
 * non-retryable 4xx is split and each op sent alone, so one bad op never blocks the
 * others, and an op waiting in backoff never holds back newer ops. Only one tab drains at
 * a time (a Web Lock); "Sync now" drains at once, ignoring backoff. Reconciled ops are
 * removed; conflicted ones stay until applied again or dismissed.
 *
 * Within a tab, changes to the queue run one at a time (`serial`): each reads the records
 * it changes from memory, writes them to the store and updates memory before the next
 * starts. A receipt can overtake the ingest response, and a reload from the store can be
 * reading while either lands; run one at a time, none of them writes back an op another
 * has just removed, or reads an op back in after its receipt removed it.
 */
import type { Conflict, EntityState, Op, OpResult, Receipt } from "../generated/schemas";
import type { OpError, OpStatus, OutboxRecord, Store } from "../store/types";
import { DEFAULT_BACKOFF, fullJitterDelay, type BackoffPolicy } from "./backoff";
import { localLock, type LockFn } from "./lock";
import { opFromConflict, receiptOutcome, serverStateVerdict } from "./reconcile";
import type { OpsTransport, PostResult } from "./transport";

export const MAX_BATCH = 500;
/** Ingest refuses bodies over 1 MiB (413 body_too_large): batches stay under it. */
export const MAX_BATCH_BYTES = 1024 * 1024;
export const LOCK_NAME = "syncpipe-outbox";

/** Statuses of ops still on their way to the server. */
export const WAITING: readonly OpStatus[] = ["pending", "inflight", "retrying"];

export interface OutboxTransition {
  op_id: string;
  from: OpStatus | null;
  /** `null` when the record was removed (reconciled, discarded, dismissed). */
  to: OpStatus | null;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface OutboxOptions {
  store: Store;
  transport: OpsTransport;
  /** This device's client id: conflicts are only for losses to other clients. */
  clientId: string;
  backoff?: Partial<BackoffPolicy>;
  maxBatch?: number;
  /** Largest request body, bytes (default {@link MAX_BATCH_BYTES}). */
  maxBatchBytes?: number;
  now?: () => number;
  random?: () => number;
  lock?: LockFn;
  timers?: Timers;
  /**
   * Whether sending can work now (the browser is online and there is a token). While
   * false, drains send nothing and ops keep their state: being offline for a day uses up
   * no attempts.
   */
  canSend?: () => boolean;
  /** Called with every server HLC seen in an ingest response (adopt it into the clock). */
  onServerHlc?: (hlc: string) => void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** HTTP statuses worth sending again later. */
export function isRetryableStatus(status: number): boolean {
  return status === 401 || status === 408 || status === 425 || status === 429 || status >= 500;
}

export class Outbox {
  readonly policy: BackoffPolicy;
  private readonly records = new Map<string, OutboxRecord>();
  private readonly listeners = new Set<(t: OutboxTransition[]) => void>();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly lock: LockFn;
  private readonly timers: Timers;
  private readonly maxBatch: number;
  private draining: Promise<void> | null = null;
  private rerun: { force: boolean } | null = null;
  private wake: unknown = null;
  private wakeAt: number | null = null;
  private lastSeq = 0;
  private stopped = false;
  /** The last change queued (see `serial`); never rejects. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Ops enqueued (in memory) whose first store write has not run yet. */
  private readonly unsaved = new Set<string>();

  constructor(private readonly options: OutboxOptions) {
    this.policy = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.lock = options.lock ?? localLock();
    this.timers = options.timers ?? realTimers;
    this.maxBatch = Math.min(Math.max(options.maxBatch ?? MAX_BATCH, 1), MAX_BATCH);
  }

  /** Load the queue from the store (call once at start, and when another tab changed it). */
  load(): Promise<void> {
    return this.serial(() => this.loadNow());
  }

  private async loadNow(): Promise<void> {
    const stored = await this.options.store.listOps();
    const transitions: OutboxTransition[] = [];
    const seen = new Set<string>();
    for (const r of stored) {
      seen.add(r.op.op_id);
      const before = this.records.get(r.op.op_id);
      if (
        before === undefined ||
        before.status !== r.status ||
        before.updated_at !== r.updated_at
      ) {
        transitions.push({ op_id: r.op.op_id, from: before?.status ?? null, to: r.status });
      }
      this.records.set(r.op.op_id, r);
      this.lastSeq = Math.max(this.lastSeq, r.seq);
    }
    for (const [id, r] of this.records) {
      if (!seen.has(id) && !this.unsaved.has(id)) {
        this.records.delete(id);
        transitions.push({ op_id: id, from: r.status, to: null });
      }
    }
    this.emit(transitions);
    this.scheduleWake();
  }

  /** Every op in the queue, in enqueue order. */
  list(): OutboxRecord[] {
    return [...this.records.values()].sort((a, b) => a.seq - b.seq);
  }

  get(opId: string): OutboxRecord | undefined {
    return this.records.get(opId);
  }

  /** How many ops are still on their way (pending, inflight, retrying). */
  waitingCount(): number {
    return this.list().filter((r) => WAITING.includes(r.status)).length;
  }

  /** Subscribe to status changes; returns the unsubscribe function. */
  subscribe(listener: (transitions: OutboxTransition[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Store a new op as `pending` and start delivering it. */
  async enqueue(op: Op): Promise<OutboxRecord> {
    const t = this.now();
    this.lastSeq = Math.max(this.lastSeq + 1, t * 1000);
    const record: OutboxRecord = {
      op,
      seq: this.lastSeq,
      status: "pending",
      attempts: 0,
      next_attempt_at: null,
      error: null,
      conflict: null,
      receipt_status: null,
      created_at: t,
      updated_at: t,
    };
    // In memory in the caller's tick, so the edit shows at once; stored in turn.
    this.records.set(op.op_id, record);
    this.unsaved.add(op.op_id);
    await this.serial(async () => {
      this.unsaved.delete(op.op_id);
      await this.commit([record], [{ op_id: op.op_id, from: null, to: "pending" }]);
    });
    void this.drain();
    return record;
  }

  /** "Sync now": send every waiting op at once, ignoring backoff. */
  syncNow(): Promise<void> {
    return this.drain({ force: true });
  }

  /**
   * Deliver what is due. Concurrent calls coalesce into the running drain (which runs once
   * more); across tabs the Web Lock serializes drains.
   */
  drain(options: { force?: boolean } = {}): Promise<void> {
    const force = options.force ?? false;
    if (this.stopped) return Promise.resolve();
    if (this.draining !== null) {
      this.rerun = { force: force || (this.rerun?.force ?? false) };
      return this.draining;
    }
    const run = async (): Promise<void> => {
      let next: { force: boolean } | null = { force };
      try {
        while (next !== null) {
          this.rerun = null;
          const f = next.force;
          await this.lock(LOCK_NAME, () => this.drainLocked(f));
          next = this.rerun;
        }
      } finally {
        this.draining = null;
        this.scheduleWake();
      }
    };
    this.draining = run();
    return this.draining;
  }

  /** Put a failed op back in the queue with fresh attempts. */
  async retry(opId: string): Promise<void> {
    const retried = await this.serial(async () => {
      const r = this.records.get(opId);
      if (r === undefined || r.status !== "failed") return false;
      await this.transition([r], "pending", { attempts: 0, next_attempt_at: null, error: null });
      return true;
    });
    if (retried) void this.drain();
  }

  /** Drop a failed or conflicted op (the user gave up on it). */
  discard(opId: string): Promise<void> {
    return this.serial(async () => {
      const r = this.records.get(opId);
      if (r !== undefined) await this.remove([r]);
    });
  }

  /** A reconciliation receipt for one of our ops; `entity` is the server state, if known. */
  onReceipt(receipt: Receipt, entity?: EntityState): Promise<void> {
    return this.serial(() => this.receiptNow(receipt, entity));
  }

  private async receiptNow(receipt: Receipt, entity?: EntityState): Promise<void> {
    const r = this.records.get(receipt.op_id);
    if (r === undefined || r.status === "failed" || r.status === "conflicted") return;
    const outcome = receiptOutcome(r.op, receipt, entity, this.options.clientId);
    const patch = { receipt_status: receipt.status, next_attempt_at: null };
    if (outcome.to === "reconciled") {
      await this.remove([r], "reconciled");
    } else if (outcome.to === "conflicted") {
      await this.transition([r], "conflicted", patch);
    } else {
      const error = { code: "invalid", message: outcome.reason, retriable: false };
      await this.transition([r], "failed", { ...patch, error });
    }
  }

  /**
   * A newer server state of an entity: settles `sent` ops on it whose receipt was missed
   * (e.g. while disconnected). An op the state contains is reconciled; an op it wholly
   * supersedes is treated like a stale receipt.
   */
  onServerState(entity: EntityState): Promise<void> {
    return this.serial(() => this.serverStateNow(entity));
  }

  private async serverStateNow(entity: EntityState): Promise<void> {
    for (const r of this.list()) {
      if (r.status !== "sent") continue;
      const verdict = serverStateVerdict(r.op, entity);
      if (verdict === null) continue;
      if (verdict.contains) {
        await this.remove([r], "reconciled");
        continue;
      }
      const { op } = r;
      await this.receiptNow(
        {
          op_id: op.op_id,
          tenant: entity.tenant,
          client_id: op.client_id,
          user_id: "",
          collection: op.collection,
          entity_id: op.entity_id,
          kind: op.kind,
          hlc: op.hlc,
          status: "stale",
          version: entity.version,
          lost_fields: verdict.lost_fields,
          reason: null,
          received_at_ms: entity.received_at_ms,
        },
        entity,
      );
    }
  }

  /** A conflict report: one of our ops lost to another client's newer write. */
  onConflict(conflict: Conflict): Promise<void> {
    return this.serial(() => this.conflictNow(conflict));
  }

  private async conflictNow(conflict: Conflict): Promise<void> {
    if (conflict.client_id !== this.options.clientId) return;
    const r = this.records.get(conflict.op_id);
    if (r !== undefined) {
      if (r.status === "failed") return;
      await this.transition([r], "conflicted", { conflict, next_attempt_at: null });
      return;
    }
    // Already reconciled and removed (the receipt came first): keep the conflict anyway.
    const t = this.now();
    const record: OutboxRecord = {
      op: opFromConflict(conflict),
      seq: ++this.lastSeq,
      status: "conflicted",
      attempts: 1,
      next_attempt_at: null,
      error: null,
      conflict,
      receipt_status: null,
      created_at: t,
      updated_at: t,
    };
    await this.commit([record], [{ op_id: conflict.op_id, from: null, to: "conflicted" }]);
  }

  /** Stop timers; an in-flight drain finishes but nothing new starts. */
  stop(): void {
    this.stopped = true;
    if (this.wake !== null) this.timers.clearTimeout(this.wake);
    this.wake = null;
    this.wakeAt = null;
  }

  private async drainLocked(force: boolean): Promise<void> {
    const go = await this.serial(async () => {
      await this.loadNow(); // another tab may have added, sent or removed ops
      if (this.options.canSend !== undefined && !this.options.canSend()) return false;
      // We hold the lock, so nothing is really in flight: those are from a closed tab.
      const orphans = this.list().filter((r) => r.status === "inflight");
      if (orphans.length > 0)
        await this.transition(orphans, "retrying", { next_attempt_at: this.now() });
      return true;
    });
    if (!go) return;
    const tried = new Set<string>();
    for (;;) {
      const t = this.now();
      const due = this.list().filter(
        (r) =>
          !tried.has(r.op.op_id) &&
          (r.status === "pending" ||
            (r.status === "retrying" && (force || (r.next_attempt_at ?? 0) <= t))),
      );
      if (due.length === 0 || this.stopped) return;
      const batch = this.takeBatch(due);
      for (const r of batch) tried.add(r.op.op_id);
      await this.send(batch);
    }
  }

  /** The first due ops that fit one request: at most maxBatch ops and maxBatchBytes. */
  private takeBatch(due: OutboxRecord[]): OutboxRecord[] {
    const limit = this.options.maxBatchBytes ?? MAX_BATCH_BYTES;
    const encoder = new TextEncoder();
    let bytes = '{"ops":[]}'.length;
    const batch: OutboxRecord[] = [];
    for (const r of due) {
      if (batch.length >= this.maxBatch) break;
      const size = encoder.encode(JSON.stringify(r.op)).length + 1;
      // Always send at least one op: an op too large on its own gets its 413 and fails.
      if (batch.length > 0 && bytes + size > limit) break;
      batch.push(r);
      bytes += size;
    }
    return batch;
  }

  private async send(batch: OutboxRecord[]): Promise<void> {
    const inflight = await this.serial(() => {
      // As they are now: a receipt or a discard may have moved them since they were picked.
      const current = batch
        .map((r) => this.records.get(r.op.op_id))
        .filter((r): r is OutboxRecord => r !== undefined && WAITING.includes(r.status));
      return this.transition(current, "inflight", (r) => ({
        attempts: r.attempts + 1,
        next_attempt_at: null,
      }));
    });
    if (inflight.length === 0) return;
    const ops = inflight.map((r) => r.op) as [Op, ...Op[]];
    let result: PostResult;
    try {
      result = await this.options.transport.post({ ops });
    } catch (err) {
      result = { kind: "network", message: err instanceof Error ? err.message : String(err) };
    }
    const alone = await this.serial(() => this.settleSend(inflight, result));
    // Refused as a whole: find the bad op(s) by sending each op alone.
    for (const r of alone) {
      const current = this.records.get(r.op.op_id);
      if (current?.status === "inflight") await this.send([current]);
    }
  }

  /** Apply ingest's answer to the ops of one request; returns the ops to send one by one. */
  private async settleSend(inflight: OutboxRecord[], result: PostResult): Promise<OutboxRecord[]> {
    // A receipt may have overtaken the response; only ops still inflight are ours to move.
    const still = inflight
      .map((r) => this.records.get(r.op.op_id))
      .filter((r): r is OutboxRecord => r?.status === "inflight");
    if (result.kind === "network") {
      await this.retryOrFail(
        still,
        { code: "network", message: `network error: ${result.message}`, retriable: true },
        null,
      );
      return [];
    }
    if (result.kind === "http_error") {
      const p = result.problem;
      const error: OpError = {
        code: p?.code ?? `http_${result.status}`,
        message: p?.detail ?? p?.title ?? `the server answered HTTP ${result.status}`,
        http_status: result.status,
        // ingest says whether the same request may succeed later; else judge by status
        retriable:
          typeof p?.retriable === "boolean" ? p.retriable : isRetryableStatus(result.status),
      };
      const retryAfterMs =
        result.retryAfterMs ??
        (typeof p?.retry_after_s === "number" ? Math.max(0, p.retry_after_s) * 1000 : null);
      if (error.retriable) {
        await this.retryOrFail(still, error, retryAfterMs);
      } else if (still.length > 1) {
        return still;
      } else {
        await this.transition(still, "failed", { error });
      }
      return [];
    }
    this.options.onServerHlc?.(result.result.server_hlc);
    const byId = new Map<string, OpResult>();
    for (const res of result.result.results) byId.set(res.op_id, res);
    const sent: OutboxRecord[] = [];
    for (const r of still) {
      const res = byId.get(r.op.op_id);
      if (res === undefined) {
        await this.retryOrFail(
          [r],
          {
            code: "missing_result",
            message: "the server did not answer for this op",
            retriable: true,
          },
          null,
        );
      } else if (res.status === "accepted" || res.status === "duplicate") {
        sent.push(r);
      } else {
        const error: OpError = {
          code: res.code ?? "rejected",
          message: res.message ?? "the server rejected this change",
          retriable: res.retriable ?? false,
        };
        if (error.retriable) await this.retryOrFail([r], error, null);
        else await this.transition([r], "failed", { error });
      }
    }
    if (sent.length > 0) await this.transition(sent, "sent", { error: null });
    return [];
  }

  /**
   * Run `fn` once every change queued before it has finished (the module doc): the queue's
   * changes in this tab happen one at a time, in the order they were asked for.
   */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async retryOrFail(
    records: OutboxRecord[],
    error: OpError,
    retryAfterMs: number | null,
  ): Promise<void> {
    const exhausted = records.filter((r) => r.attempts >= this.policy.maxAttempts);
    const again = records.filter((r) => r.attempts < this.policy.maxAttempts);
    if (exhausted.length > 0) {
      await this.transition(exhausted, "failed", (r) => ({
        error: { ...error, message: `${error.message} (gave up after ${r.attempts} attempts)` },
      }));
    }
    if (again.length > 0) {
      const t = this.now();
      await this.transition(again, "retrying", (r) => ({
        error,
        next_attempt_at:
          t + (retryAfterMs ?? fullJitterDelay(r.attempts, this.policy, this.random)),
      }));
    }
  }

  private async transition(
    records: OutboxRecord[],
    to: OpStatus,
    patch: Partial<OutboxRecord> | ((r: OutboxRecord) => Partial<OutboxRecord>) = {},
  ): Promise<OutboxRecord[]> {
    if (records.length === 0) return [];
    const t = this.now();
    const next = records.map((r) => ({
      ...r,
      ...(typeof patch === "function" ? patch(r) : patch),
      status: to,
      updated_at: t,
    }));
    await this.commit(
      next,
      records.map((r) => ({ op_id: r.op.op_id, from: r.status, to })),
    );
    return next;
  }

  private async remove(records: OutboxRecord[], via?: OpStatus): Promise<void> {
    const ids = records.map((r) => r.op.op_id);
    await this.options.store.deleteOps(ids);
    for (const id of ids) this.records.delete(id);
    const transitions: OutboxTransition[] = [];
    for (const r of records) {
      if (via !== undefined) transitions.push({ op_id: r.op.op_id, from: r.status, to: via });
      transitions.push({ op_id: r.op.op_id, from: via ?? r.status, to: null });
    }
    this.emit(transitions);
  }

  private async commit(records: OutboxRecord[], transitions: OutboxTransition[]): Promise<void> {
    // Memory first, in the caller's tick: a render that happens while the write is in
    // flight already shows the change (no flicker of a just-ticked checkbox).
    for (const r of records) this.records.set(r.op.op_id, r);
    await this.options.store.putOps(records);
    this.emit(transitions);
  }

  private emit(transitions: OutboxTransition[]): void {
    if (transitions.length === 0) return;
    for (const l of this.listeners) l(transitions);
  }

  /** Arm one timer for the earliest retry that is due later. */
  private scheduleWake(): void {
    if (this.stopped || this.draining !== null) return; // drain() re-arms when it ends
    // Offline or no token: nothing can be sent, so no timer; syncNow() restarts delivery.
    const blocked = this.options.canSend !== undefined && !this.options.canSend();
    const times = (blocked ? [] : this.list())
      .filter((r) => r.status === "retrying" || r.status === "pending")
      .map((r) => (r.status === "pending" ? this.now() : (r.next_attempt_at ?? this.now())));
    if (times.length === 0) {
      if (this.wake !== null) this.timers.clearTimeout(this.wake);
      this.wake = null;
      this.wakeAt = null;
      return;
    }
    const at = Math.min(...times);
    if (this.wake !== null && this.wakeAt === at) return;
    if (this.wake !== null) this.timers.clearTimeout(this.wake);
    this.wakeAt = at;
    this.wake = this.timers.setTimeout(
      () => {
        this.wake = null;
        this.wakeAt = null;
        void this.drain();
      },
      Math.max(0, at - this.now()),
    );
  }

  /** When the next automatic attempt is due (ms since epoch), or null. */
  nextWakeAt(): number | null {
    return this.wakeAt;
  }
}
