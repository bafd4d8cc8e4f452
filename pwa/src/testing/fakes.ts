/** Test doubles shared by the unit tests: a manual clock/timers and a scripted transport. */
import type { Op, OpBatch, OpBatchResult, OpResult } from "../generated/schemas";
import type { OpsTransport, PostResult } from "../outbox/transport";
import type { Timers } from "../outbox/outbox";

/** A clock and timers that only move when the test says so. */
export class ManualTime implements Timers {
  now = 1_700_000_000_000;
  private nextId = 1;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();

  readonly clock = (): number => this.now;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Move time forward, firing every timer that comes due, in time order. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const due = [...this.pending.entries()]
        .filter(([, t]) => t.at <= until)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.pending.delete(due[0]);
      this.now = Math.max(this.now, due[1].at);
      due[1].fn();
    }
    this.now = until;
  }

  /** When the earliest timer fires, or null. */
  nextAt(): number | null {
    const ats = [...this.pending.values()].map((t) => t.at);
    return ats.length === 0 ? null : Math.min(...ats);
  }
}

type Responder = (batch: OpBatch) => PostResult | Promise<PostResult>;

/** A transport that answers from a script (then accepts everything) and records calls. */
export class ScriptedTransport implements OpsTransport {
  readonly calls: Op[][] = [];
  private readonly script: Responder[] = [];
  serverHlc = "001700000000000-0000-ingest-1";

  /** Queue one answer (used by the next post). */
  then(responder: Responder | PostResult): this {
    this.script.push(typeof responder === "function" ? responder : () => responder);
    return this;
  }

  /** Drop what is left of the script (from now on, accept everything). */
  clear(): this {
    this.script.length = 0;
    return this;
  }

  async post(batch: OpBatch): Promise<PostResult> {
    this.calls.push([...batch.ops]);
    const next = this.script.shift();
    if (next !== undefined) return next(batch);
    return this.accept(batch);
  }

  accept(batch: OpBatch, overrides: Record<string, Partial<OpResult>> = {}): PostResult {
    const results: OpResult[] = batch.ops.map((op) => ({
      op_id: op.op_id,
      status: "accepted",
      partition: 0,
      offset: 0,
      ...overrides[op.op_id],
    }));
    const result: OpBatchResult = { results, server_hlc: this.serverHlc };
    return { kind: "ok", result };
  }

  /** Every op id posted, in order (an op sent twice appears twice). */
  sentIds(): string[] {
    return this.calls.flat().map((o) => o.op_id);
  }
}

export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A WebSocket stand-in: the test opens, feeds frames to and closes it. */
export class FakeSocket {
  readonly sent: unknown[] = [];
  closed: { code?: number; reason?: string } | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
  }

  /** Server side: accept the connection. */
  open(): void {
    this.onopen?.({});
  }

  /** Server side: send one frame (an object is JSON-encoded). */
  receive(message: unknown): void {
    this.onmessage?.({ data: typeof message === "string" ? message : JSON.stringify(message) });
  }

  /** Server side: close the connection. */
  drop(code = 1006, reason = ""): void {
    this.onclose?.({ code, reason });
  }
}

/** A socket factory that remembers every socket it made. */
export function socketFactory(): {
  sockets: FakeSocket[];
  factory: (url: string) => FakeSocket;
  last: () => FakeSocket;
} {
  const sockets: FakeSocket[] = [];
  return {
    sockets,
    factory: (url: string) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    last: () => {
      const s = sockets.at(-1);
      if (s === undefined) throw new Error("no socket was opened");
      return s;
    },
  };
}
