/**
 * The sync engine: one object the UI talks to. It owns the HLC, the outbox, the replica
 * of server state and the push connection, and turns them into a task list.
 *
 * Local edits become ops (fresh HLC, new op id) in the durable outbox; push messages
 * update the replica (kept by version), the cursor (stored with the state in one
 * transaction) and settle outbox ops (receipts, conflicts). The task list is always
 * `replica ⊕ unconfirmed ops`, recomputed on every change.
 */
import type { Op, ServerMessage } from "../generated/schemas";
import type { LockFn } from "../outbox/lock";
import { Outbox, WAITING, type Timers } from "../outbox/outbox";
import type { BackoffPolicy } from "../outbox/backoff";
import type { OpsTransport } from "../outbox/transport";
import type { OutboxRecord, Store } from "../store/types";
import { HlcClock } from "./hlc";
import { PushClient, type PushState, type SocketFactory } from "./push";
import { Replica } from "./replica";
import { TASKS, buildTasks, type TaskView } from "./view";

export { TASKS } from "./view";
export type { ConflictHint, TaskView } from "./view";

export interface VersionMismatch {
  protocol: number;
  app_version: string;
}

export interface EngineStatus {
  /** The browser reports a network and the push socket is open. */
  online: boolean;
  push: PushState;
  /** The browser reports a network (navigator.onLine). */
  network: boolean;
  /** Ops on their way: pending, inflight, retrying. */
  waiting: number;
  /** The soonest retry among ops waiting out a backoff, and why they wait. */
  nextRetry: { at: number; reason: string } | null;
  /** Ops that need attention (retry or discard). */
  failed: OutboxRecord[];
  versionMismatch: VersionMismatch | null;
  lastError: string | null;
}

interface ChannelLike {
  postMessage(message: unknown): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
  close?(): void;
}

export interface EngineOptions {
  store: Store;
  transport: OpsTransport;
  /** null: no push connection (offline-only, or tests that drive `handle`). */
  socketFactory: SocketFactory | null;
  wsBase: () => string;
  token: () => string | null;
  appVersion: string;
  protocol: number;
  backoff?: Partial<BackoffPolicy>;
  wallClock?: () => number;
  random?: () => number;
  timers?: Timers;
  lock?: LockFn;
  newId?: () => string;
  /** Tells other tabs of this app that the shared IndexedDB changed. */
  channel?: ChannelLike | null;
  /** navigator.onLine, read when the status is computed. */
  browserOnline?: () => boolean;
}

/** A UUID v4 op id; randomUUID needs a secure context, getRandomValues does not. */
export function randomId(
  cryptoImpl: Pick<Crypto, "getRandomValues"> & { randomUUID?: () => string } = globalThis.crypto,
): string {
  if (typeof cryptoImpl.randomUUID === "function") return cryptoImpl.randomUUID();
  const b = cryptoImpl.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function newClientId(random: () => number): string {
  let s = "";
  for (let i = 0; i < 12; i++) s += Math.floor(random() * 36).toString(36);
  return `web-${s}`;
}

export class SyncEngine {
  readonly outbox: Outbox;
  readonly replica = new Replica();
  readonly push: PushClient | null;
  private readonly listeners = new Set<() => void>();
  private versionMismatch: VersionMismatch | null = null;
  private lastError: string | null = null;
  private pushState: PushState = "idle";
  private notifyQueued = false;
  private broadcastQueued = false;
  private readonly newId: () => string;

  private constructor(
    private readonly options: EngineOptions,
    readonly clientId: string,
    readonly clock: HlcClock,
  ) {
    this.newId = options.newId ?? randomId;
    this.outbox = new Outbox({
      store: options.store,
      transport: options.transport,
      clientId,
      backoff: options.backoff,
      now: options.wallClock,
      random: options.random,
      timers: options.timers,
      lock: options.lock,
      onServerHlc: (hlc) => void this.adopt(hlc),
      canSend: () => (options.browserOnline?.() ?? true) && Boolean(options.token()),
    });
    this.outbox.subscribe(() => {
      this.notify();
      this.broadcast();
    });
    this.push =
      options.socketFactory === null
        ? null
        : new PushClient({
            wsBase: options.wsBase,
            token: options.token,
            clientId,
            socketFactory: options.socketFactory,
            timers: options.timers,
            random: options.random,
            subscriptions: async () => [
              { collection: TASKS, cursor: await options.store.getCursor(TASKS) },
            ],
            handler: {
              onMessage: (m) => this.handle(m),
              onState: (state, detail) => {
                this.pushState = state;
                if (state === "rejected") {
                  const why = detail?.reason ? `: ${detail.reason}` : "";
                  this.lastError = `live updates stopped (close ${detail?.code ?? "?"}${why}); check the token, then reload`;
                } else if (state === "open" && this.lastError?.startsWith("live updates")) {
                  this.lastError = null;
                }
                this.notify();
              },
            },
          });
    if (options.channel) {
      options.channel.onmessage = () => void this.reload();
    }
  }

  /** Load (or create) the client id, clock, outbox and replica from the store. */
  static async open(options: EngineOptions): Promise<SyncEngine> {
    const random = options.random ?? Math.random;
    let clientId = await options.store.getMeta<string>("client_id");
    if (clientId === undefined) {
      clientId = newClientId(random);
      await options.store.setMeta("client_id", clientId);
    }
    const clock = new HlcClock(clientId, options.wallClock);
    const last = await options.store.getMeta<string>("hlc");
    try {
      if (last !== undefined) clock.receive(last); // never issue a timestamp twice
    } catch {
      // a malformed stored value: start from the wall clock rather than not at all
    }
    const engine = new SyncEngine(options, clientId, clock);
    await engine.reload();
    return engine;
  }

  /** Start delivering the outbox and connect to push. */
  start(): void {
    if (this.options.token()) this.push?.start(); // without a token push would refuse us
    void this.outbox.drain();
  }

  stop(): void {
    this.push?.stop();
    this.outbox.stop();
    this.options.channel?.close?.();
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The browser went online or offline. */
  setOnline(online: boolean): void {
    if (online) {
      this.push?.reconnectNow();
      void this.outbox.syncNow();
    }
    this.notify();
  }

  status(): EngineStatus {
    const records = this.outbox.list();
    const browserOnline = this.options.browserOnline?.() ?? true;
    const retrying = records
      .filter((r) => r.status === "retrying" && r.next_attempt_at !== null)
      .sort((a, b) => (a.next_attempt_at ?? 0) - (b.next_attempt_at ?? 0))[0];
    return {
      online: browserOnline && (this.push === null || this.pushState === "open"),
      network: browserOnline,
      push: this.pushState,
      waiting: records.filter((r) => WAITING.includes(r.status)).length,
      nextRetry:
        retrying === undefined
          ? null
          : { at: retrying.next_attempt_at ?? 0, reason: retrying.error?.message ?? "" },
      failed: records.filter((r) => r.status === "failed"),
      versionMismatch: this.versionMismatch,
      lastError: this.lastError,
    };
  }

  /** The task list: server state with unconfirmed edits applied, in creation order. */
  tasks(): TaskView[] {
    return buildTasks(this.replica, this.outbox.list(), this.clientId);
  }

  async createTask(title: string): Promise<string> {
    const id = `${(this.options.wallClock ?? Date.now)().toString(36).padStart(9, "0")}-${this.newId().slice(0, 8)}`;
    await this.write(id, "upsert", { title, done: false });
    return id;
  }

  setTitle(id: string, title: string): Promise<void> {
    return this.write(id, "upsert", { title }).then(() => undefined);
  }

  setDone(id: string, done: boolean): Promise<void> {
    return this.write(id, "upsert", { done }).then(() => undefined);
  }

  deleteTask(id: string): Promise<void> {
    return this.write(id, "delete", null).then(() => undefined);
  }

  /** "Apply mine again": the conflicted op's values as a new op with a fresh HLC. */
  async applyMineAgain(opId: string): Promise<void> {
    const r = this.outbox.get(opId);
    if (r === undefined || r.status !== "conflicted") return;
    await this.write(
      r.op.entity_id,
      r.op.kind,
      r.op.kind === "delete" ? null : { ...(r.op.fields ?? {}) },
    );
    await this.outbox.discard(opId);
  }

  dismissConflict(opId: string): Promise<void> {
    return this.outbox.discard(opId);
  }

  retry(opId: string): Promise<void> {
    return this.outbox.retry(opId);
  }

  discard(opId: string): Promise<void> {
    return this.outbox.discard(opId);
  }

  /** "Sync now": flush the outbox ignoring backoff, and reconnect push if it is waiting. */
  async syncNow(): Promise<void> {
    this.push?.reconnectNow();
    await this.outbox.syncNow();
  }

  private async write(
    entityId: string,
    kind: Op["kind"],
    fields: Record<string, unknown> | null,
  ): Promise<Op> {
    // An edit made after seeing a value must beat it: move the clock past what we saw.
    const seen = this.replica.get(TASKS, entityId);
    const hlcs = seen === undefined ? [] : Object.values(seen.fields).map((r) => r?.hlc);
    if (seen?.deleted_hlc) hlcs.push(seen.deleted_hlc);
    const conflicts = this.outbox.list().filter((r) => r.op.entity_id === entityId && r.conflict);
    for (const r of conflicts)
      for (const f of Object.values(r.conflict?.fields ?? {})) hlcs.push(f?.winner.hlc);
    for (const h of hlcs) {
      if (h === undefined) continue;
      try {
        if (h > (this.clock.last ?? "")) this.clock.receive(h);
      } catch {
        /* a malformed HLC from the server is not ours to adopt */
      }
    }
    const op: Op = {
      op_id: this.newId(),
      client_id: this.clientId,
      collection: TASKS,
      entity_id: entityId,
      kind,
      hlc: this.clock.now(),
      ...(kind === "upsert" ? { fields: fields ?? {} } : {}),
    };
    // Enqueue in this tick, so the edit is in the local view before anything else renders.
    const queued = this.outbox.enqueue(op);
    await this.options.store.setMeta("hlc", this.clock.last);
    await queued;
    return op;
  }

  private async adopt(serverHlc: string): Promise<void> {
    try {
      this.clock.receive(serverHlc);
      await this.options.store.setMeta("hlc", this.clock.last);
    } catch (err) {
      this.lastError = `ignored a malformed server HLC: ${(err as Error).message}`;
    }
  }

  /** Handle one push message (the push client calls this in order; tests call it directly). */
  async handle(message: ServerMessage): Promise<void> {
    const store = this.options.store;
    switch (message.type) {
      case "batch":
        for (const m of message.messages) await this.handle(m);
        return;
      case "hello":
        await this.adopt(message.server_hlc);
        this.versionMismatch =
          message.protocol !== this.options.protocol ||
          message.app_version !== this.options.appVersion
            ? { protocol: message.protocol, app_version: message.app_version }
            : null;
        break;
      case "snapshot": {
        const { replace, entities } = this.replica.applySnapshot(message);
        await store.writeServerState({
          collection: message.collection,
          replace,
          entities,
          cursor: message.cursor,
        });
        for (const e of entities) await this.outbox.onServerState(e);
        break;
      }
      case "entity": {
        const state = message.state;
        const kept = this.replica.offer(state);
        await store.writeServerState({
          collection: state.collection,
          replace: false,
          entities: kept ? [state] : [],
          cursor: message.cursor,
        });
        if (kept) await this.outbox.onServerState(state);
        break;
      }
      case "receipt": {
        const r = message.receipt;
        await this.outbox.onReceipt(r, this.replica.get(r.collection, r.entity_id));
        break;
      }
      case "conflict":
        await this.outbox.onConflict(message.conflict);
        break;
      case "disconnect_notice":
        if (message.cursor !== null) await store.setCursor(TASKS, message.cursor);
        break;
      case "error":
        this.lastError = `${message.code}: ${message.message}`;
        break;
      case "pong":
        return;
    }
    // Other tabs get the same push messages on their own sockets: no broadcast here.
    this.notify();
  }

  /** Re-read everything from the store (another tab changed it). */
  async reload(): Promise<void> {
    // Tabs share the client id: move past the other tab's last timestamp so two tabs do
    // not issue the same HLC.
    const last = await this.options.store.getMeta<string>("hlc");
    if (last !== undefined && last > (this.clock.last ?? "")) {
      try {
        this.clock.receive(last);
      } catch {
        /* a malformed stored value: our own clock stays valid */
      }
    }
    this.replica.load(TASKS, await this.options.store.listEntities(TASKS));
    await this.outbox.load();
    this.notify();
  }

  private notify(): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      for (const l of this.listeners) l();
    });
  }

  private broadcast(): void {
    const channel = this.options.channel;
    if (!channel || this.broadcastQueued) return;
    this.broadcastQueued = true;
    queueMicrotask(() => {
      this.broadcastQueued = false;
      channel.postMessage({ type: "changed" });
    });
  }
}
