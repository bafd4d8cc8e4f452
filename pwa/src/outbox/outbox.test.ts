import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";
import type { Conflict, EntityState, Op, Receipt } from "../generated/schemas";
import { IdbStore } from "../store/idb";
import { MemoryStore, createMemoryData } from "../store/memory";
import type { OutboxRecord, Store } from "../store/types";
import { ManualTime, ScriptedTransport, deferred } from "../testing/fakes";
import { backoffCeiling, seededRandom } from "./backoff";
import { localLock } from "./lock";
import { Outbox, type OutboxTransition } from "./outbox";
import type { PostResult } from "./transport";

const ME = "web-a";
let n = 0;

function makeOp(fields: Record<string, unknown> | null = { title: "x" }, entity = "t1"): Op {
  n += 1;
  return {
    op_id: `op-${n}`,
    client_id: ME,
    collection: "tasks",
    entity_id: entity,
    kind: fields === null ? "delete" : "upsert",
    fields,
    hlc: `0017000000${String(n).padStart(5, "0")}-0000-${ME}`,
  };
}

function setup(
  opts: {
    store?: Store;
    transport?: ScriptedTransport;
    time?: ManualTime;
    maxAttempts?: number;
    seed?: number;
  } = {},
) {
  const time = opts.time ?? new ManualTime();
  const transport = opts.transport ?? new ScriptedTransport();
  const store = opts.store ?? new MemoryStore();
  const transitions: OutboxTransition[] = [];
  const serverHlcs: string[] = [];
  const outbox = new Outbox({
    store,
    transport,
    clientId: ME,
    backoff: { baseMs: 1000, capMs: 30_000, maxAttempts: opts.maxAttempts ?? 5 },
    now: time.clock,
    random: seededRandom(opts.seed ?? 1),
    timers: time,
    onServerHlc: (h) => serverHlcs.push(h),
  });
  outbox.subscribe((t) => transitions.push(...t));
  const path = (opId: string) =>
    transitions.filter((t) => t.op_id === opId).map((t) => t.to ?? "removed");
  return { time, transport, store, outbox, transitions, path, serverHlcs };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/**
 * A MemoryStore that, while `lagging`, takes effect when called (IndexedDB runs its
 * transactions in the order they were opened) but answers only on `release()`: a write or
 * read that is still in progress while other changes land.
 */
class LaggingStore extends MemoryStore {
  lagging = false;
  private readonly held: (() => void)[] = [];

  private answer<T>(value: T, lagging: boolean): Promise<T> {
    if (!lagging) return Promise.resolve(value);
    return new Promise((resolve) => this.held.push(() => resolve(value)));
  }

  release(): void {
    this.lagging = false;
    for (const resolve of this.held.splice(0)) resolve();
  }

  override async putOps(records: OutboxRecord[]): Promise<void> {
    const lagging = this.lagging;
    await super.putOps(records);
    return this.answer(undefined, lagging);
  }

  override async deleteOps(opIds: string[]): Promise<void> {
    const lagging = this.lagging;
    await super.deleteOps(opIds);
    return this.answer(undefined, lagging);
  }

  override async listOps(): Promise<OutboxRecord[]> {
    const lagging = this.lagging;
    return this.answer(await super.listOps(), lagging);
  }
}

async function settle(outbox: Outbox): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await outbox.drain();
    await new Promise((r) => setTimeout(r, 0));
  }
}

function receipt(
  op: Op,
  status: Receipt["status"],
  lost: string[] = [],
  reason: string | null = null,
): Receipt {
  return {
    op_id: op.op_id,
    tenant: "acme",
    client_id: op.client_id,
    user_id: "u",
    collection: op.collection,
    entity_id: op.entity_id,
    kind: op.kind,
    hlc: op.hlc,
    status,
    version: 2,
    lost_fields: lost,
    reason,
    received_at_ms: 1,
  };
}

function serverEntity(
  title: string,
  client: string,
  hlc = "001799999999999-0000-" + client,
): EntityState {
  return {
    tenant: "acme",
    collection: "tasks",
    entity_id: "t1",
    version: 3,
    fields: { title: { value: title as never, hlc, client_id: client, op_id: "op-other" } },
    deleted_hlc: null,
    deleted_by: null,
    deleted_op_id: null,
    deleted: false,
    last_op_id: "op-other",
    received_at_ms: 1,
  };
}

function conflictFor(op: Op, winnerValue: string): Conflict {
  return {
    op_id: op.op_id,
    tenant: "acme",
    client_id: op.client_id,
    user_id: "u",
    collection: op.collection,
    entity_id: op.entity_id,
    kind: op.kind,
    hlc: op.hlc,
    version: 3,
    received_at_ms: 1,
    fields: {
      title: {
        yours: { value: (op.fields?.title ?? null) as never, hlc: op.hlc, deleted: false },
        winner: {
          value: winnerValue as never,
          hlc: "001799999999999-0000-web-b",
          client_id: "web-b",
          op_id: "op-b",
          deleted: false,
        },
      },
    },
  };
}

const http = (
  status: number,
  extra: Partial<Extract<PostResult, { kind: "http_error" }>> = {},
): PostResult => ({
  kind: "http_error",
  status,
  problem: null,
  retryAfterMs: null,
  ...extra,
});

describe("Outbox happy path", () => {
  it("moves an op pending → inflight → sent, adopting the server HLC", async () => {
    const { outbox, path, serverHlcs, store } = setup();
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    expect(path(op.op_id)).toEqual(["pending", "inflight", "sent"]);
    expect((await store.getOp(op.op_id))?.status).toBe("sent");
    expect(serverHlcs).toEqual(["001700000000000-0000-ingest-1"]);
    expect(outbox.waitingCount()).toBe(0);
  });

  it("treats an ingest 'duplicate' result as sent", async () => {
    const { outbox, transport, path } = setup();
    const op = makeOp();
    transport.then((b) => transport.accept(b, { [op.op_id]: { status: "duplicate" } }));
    await outbox.enqueue(op);
    await settle(outbox);
    expect(path(op.op_id)).toEqual(["pending", "inflight", "sent"]);
  });

  it("sends waiting ops together in one batch in enqueue order", async () => {
    const { outbox, transport } = setup();
    const gate = deferred<PostResult>();
    const ops = [makeOp(), makeOp(), makeOp()];
    transport.then(() => gate.promise);
    await outbox.enqueue(ops[0]!);
    await tick();
    await outbox.enqueue(ops[1]!);
    await outbox.enqueue(ops[2]!);
    gate.resolve(transport.accept({ ops: [ops[0]!] }));
    await settle(outbox);
    expect(transport.calls.map((c) => c.map((o) => o.op_id))).toEqual([
      [ops[0]!.op_id],
      [ops[1]!.op_id, ops[2]!.op_id],
    ]);
  });

  it("keeps each request under the body size limit by starting a new batch", async () => {
    const time = new ManualTime();
    const transport = new ScriptedTransport();
    const outbox = new Outbox({
      store: new MemoryStore(),
      transport,
      clientId: ME,
      maxBatchBytes: 1000,
      lock: localLock(),
      timers: time,
      now: time.clock, // frozen: the parked op's retry never comes due here
      random: () => 0.5,
    });
    const ops = [0, 1, 2, 3].map(() => makeOp({ title: "x".repeat(300) }));
    const gate = deferred<PostResult>();
    transport.then(() => gate.promise);
    await outbox.enqueue(makeOp());
    await tick();
    for (const op of ops) await outbox.enqueue(op);
    gate.resolve({ kind: "network", message: "first request parked" });
    await settle(outbox);
    const sizes = transport.calls
      .slice(1)
      .map((c) => new TextEncoder().encode(JSON.stringify({ ops: c })).length);
    expect(transport.calls.slice(1).map((c) => c.length)).toEqual([2, 2]);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(1000);
  });

  it("moves sent → reconciled on an applied or duplicate receipt and forgets the op", async () => {
    const { outbox, path, store } = setup();
    const a = makeOp();
    const b = makeOp();
    await outbox.enqueue(a);
    await outbox.enqueue(b);
    await settle(outbox);
    await outbox.onReceipt(receipt(a, "applied"));
    await outbox.onReceipt(receipt(b, "duplicate"));
    expect(path(a.op_id)).toEqual(["pending", "inflight", "sent", "reconciled", "removed"]);
    expect(path(b.op_id).slice(-2)).toEqual(["reconciled", "removed"]);
    expect(await store.listOps()).toEqual([]);
  });
});

describe("Outbox reconciliation outcomes", () => {
  it("moves sent → conflicted when a stale receipt lost to another client's write", async () => {
    const { outbox, path } = setup();
    const op = makeOp({ title: "Buy milk" });
    await outbox.enqueue(op);
    await settle(outbox);
    await outbox.onReceipt(receipt(op, "stale", ["title"]), serverEntity("Buy oat milk", "web-b"));
    expect(path(op.op_id).at(-1)).toBe("conflicted");
    expect(outbox.get(op.op_id)?.receipt_status).toBe("stale");
  });

  it("reconciles a partial receipt whose lost field went to this device's own newer write", async () => {
    const { outbox, path } = setup();
    const op = makeOp({ title: "old", done: true });
    await outbox.enqueue(op);
    await settle(outbox);
    await outbox.onReceipt(receipt(op, "partial", ["title"]), serverEntity("newer", ME));
    expect(path(op.op_id).slice(-2)).toEqual(["reconciled", "removed"]);
  });

  it("moves sent → conflicted on a conflict message and keeps the server's report", async () => {
    const { outbox, path } = setup();
    const op = makeOp({ title: "Buy milk" });
    await outbox.enqueue(op);
    await settle(outbox);
    await outbox.onConflict(conflictFor(op, "Buy oat milk"));
    await outbox.onReceipt(receipt(op, "stale", ["title"]));
    expect(path(op.op_id)).toEqual(["pending", "inflight", "sent", "conflicted"]);
    expect(outbox.get(op.op_id)?.conflict?.fields.title?.winner.value).toBe("Buy oat milk");
  });

  it("keeps a conflict that arrives after the receipt already reconciled the op", async () => {
    const { outbox } = setup();
    const op = makeOp({ title: "Buy milk" });
    await outbox.enqueue(op);
    await settle(outbox);
    await outbox.onReceipt(receipt(op, "stale", ["title"]));
    expect(outbox.get(op.op_id)).toBeUndefined();
    await outbox.onConflict(conflictFor(op, "Buy oat milk"));
    const r = outbox.get(op.op_id);
    expect(r?.status).toBe("conflicted");
    expect(r?.op.fields).toEqual({ title: "Buy milk" });
  });

  it("settles sent ops from server state when their receipts were missed", async () => {
    const { outbox } = setup();
    const mine = makeOp({ title: "mine" });
    const lost = makeOp({ title: "lost" }, "t1");
    const deleted = makeOp(null, "t2");
    for (const op of [mine, lost, deleted]) await outbox.enqueue(op);
    await settle(outbox);
    const contains = serverEntity("mine", ME);
    contains.fields.title = {
      value: "mine" as never,
      hlc: mine.hlc,
      client_id: ME,
      op_id: mine.op_id,
    };
    await outbox.onServerState(contains);
    expect(outbox.get(mine.op_id)).toBeUndefined();
    expect(outbox.get(lost.op_id)?.status).toBe("sent"); // the state holds mine, not lost: wait
    await outbox.onServerState(serverEntity("Buy oat milk", "web-b"));
    expect(outbox.get(lost.op_id)?.status).toBe("conflicted");
    const newerDelete = {
      ...serverEntity("x", "web-b"),
      entity_id: "t2",
      fields: {},
      deleted: true,
      deleted_hlc: "001799999999999-0000-web-b",
      deleted_by: "web-b",
      deleted_op_id: "del-b",
    };
    await outbox.onServerState(newerDelete);
    expect(outbox.get(deleted.op_id)).toBeUndefined(); // a delete beaten by a delete: no conflict
  });

  it("ignores a conflict about another client's op", async () => {
    const { outbox } = setup();
    const op = { ...makeOp(), client_id: "web-z" };
    await outbox.onConflict(conflictFor(op, "x"));
    expect(outbox.list()).toEqual([]);
  });

  it("fails an op whose receipt says invalid, with the server's reason", async () => {
    const { outbox, path } = setup();
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    await outbox.onReceipt(receipt(op, "invalid", [], "op 'x' rejected: upsert sets no fields"));
    expect(path(op.op_id).at(-1)).toBe("failed");
    expect(outbox.get(op.op_id)?.error?.message).toMatch(/upsert sets no fields/);
  });

  it("accepts a receipt that overtakes the ingest response", async () => {
    const { outbox, transport, path } = setup();
    const gate = deferred<PostResult>();
    transport.then(() => gate.promise);
    const op = makeOp();
    await outbox.enqueue(op);
    await new Promise((r) => setTimeout(r, 0));
    await outbox.onReceipt(receipt(op, "applied"));
    gate.resolve(transport.accept({ ops: [op] }));
    await settle(outbox);
    expect(path(op.op_id)).toEqual(["pending", "inflight", "reconciled", "removed"]);
  });

  it("never writes back an op whose receipt lands while ingest's response is applied", async () => {
    const store = new LaggingStore();
    const { outbox, transport, path } = setup({ store });
    const gate = deferred<PostResult>();
    transport.then(() => gate.promise);
    const op = makeOp();
    await outbox.enqueue(op);
    await tick(); // posted; the response is held at the gate
    store.lagging = true; // the receipt's delete is written, not yet done
    const receipted = outbox.onReceipt(receipt(op, "applied"));
    gate.resolve(transport.accept({ ops: [op] }));
    await tick();
    store.release();
    await receipted;
    await settle(outbox);
    await outbox.load(); // what the next drain, or a reload, reads back
    expect(outbox.list()).toEqual([]);
    expect(await store.listOps()).toEqual([]);
    expect(path(op.op_id)).toEqual(["pending", "inflight", "reconciled", "removed"]);
  });

  it("does not read an op back in when its receipt lands while the queue is reloaded", async () => {
    const store = new LaggingStore();
    const { outbox, path } = setup({ store });
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    store.lagging = true;
    const loading = outbox.load(); // has read the op as sent, not yet done
    store.lagging = false;
    const receipted = outbox.onReceipt(receipt(op, "applied"));
    await tick();
    store.release();
    await Promise.all([loading, receipted]);
    expect(outbox.list()).toEqual([]);
    expect(await store.listOps()).toEqual([]);
    expect(path(op.op_id)).toEqual(["pending", "inflight", "sent", "reconciled", "removed"]);
  });

  it("keeps an op enqueued while the queue is reloaded, in memory at once", async () => {
    const store = new LaggingStore();
    const { outbox, path } = setup({ store });
    store.lagging = true;
    const loading = outbox.load(); // has read an empty store, not yet done
    const op = makeOp();
    const queued = outbox.enqueue(op);
    expect(outbox.get(op.op_id)?.status).toBe("pending");
    await tick();
    store.release();
    await loading;
    expect(outbox.get(op.op_id)?.status).toBe("pending");
    await queued;
    await settle(outbox);
    expect(path(op.op_id)).toEqual(["pending", "inflight", "sent"]);
    expect((await store.listOps()).map((r) => r.status)).toEqual(["sent"]);
  });
});

describe("Outbox retries", () => {
  it.each([
    ["a network error", { kind: "network", message: "Failed to fetch" } as PostResult, "network"],
    ["HTTP 503", http(503), "http_503"],
    [
      "HTTP 500 with a problem body",
      http(500, { problem: { code: "produce_failed", detail: "log unavailable" } }),
      "produce_failed",
    ],
    ["HTTP 429", http(429), "http_429"],
  ])(
    "moves inflight → retrying on %s, waiting a full-jitter delay",
    async (_name, answer, code) => {
      const { outbox, transport, path, time } = setup();
      transport.then(answer);
      const op = makeOp();
      await outbox.enqueue(op);
      await settle(outbox);
      const r = outbox.get(op.op_id);
      expect(path(op.op_id)).toEqual(["pending", "inflight", "retrying"]);
      expect(r?.error?.code).toBe(code);
      expect(r?.attempts).toBe(1);
      const delay = (r?.next_attempt_at ?? 0) - time.now;
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(1000);
    },
  );

  it("keeps every jittered delay within [0, min(cap, base·2^(attempt-1))) with a seeded RNG", async () => {
    const { outbox, transport, time } = setup({ maxAttempts: 12, seed: 99 });
    for (let i = 0; i < 12; i++) transport.then({ kind: "network", message: "down" });
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    const delays: number[] = [];
    for (let attempt = 1; attempt < 12; attempt++) {
      const r = outbox.get(op.op_id);
      expect(r?.status).toBe("retrying");
      expect(r?.attempts).toBe(attempt);
      const delay = (r?.next_attempt_at ?? 0) - time.now;
      const ceiling = backoffCeiling(attempt, { baseMs: 1000, capMs: 30_000 });
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(ceiling);
      delays.push(delay);
      time.advance(delay);
      await settle(outbox);
    }
    expect(backoffCeiling(11, { baseMs: 1000, capMs: 30_000 })).toBe(30_000);
    expect(new Set(delays).size).toBeGreaterThan(5); // jittered, not fixed
  });

  it("does not resend before the delay is up, and resends when the timer fires", async () => {
    const { outbox, transport, time, path } = setup();
    transport.then(http(502));
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    const due = outbox.get(op.op_id)?.next_attempt_at ?? 0;
    expect(outbox.nextWakeAt()).toBe(due);
    await outbox.drain();
    expect(transport.calls).toHaveLength(1);
    time.advance(due - time.now);
    await settle(outbox);
    expect(transport.calls).toHaveLength(2);
    expect(path(op.op_id)).toEqual(["pending", "inflight", "retrying", "inflight", "sent"]);
  });

  it("honours Retry-After in seconds", async () => {
    const { outbox, transport, time } = setup();
    transport.then(http(429, { retryAfterMs: 120_000 }));
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    expect(outbox.get(op.op_id)?.next_attempt_at).toBe(time.now + 120_000);
    time.advance(119_999);
    await settle(outbox);
    expect(transport.calls).toHaveLength(1);
    time.advance(1);
    await settle(outbox);
    expect(transport.calls).toHaveLength(2);
  });

  it("uses the problem's retry_after_s when the Retry-After header is missing", async () => {
    const { outbox, transport, time } = setup();
    transport.then(
      http(503, { problem: { code: "broker_unavailable", retriable: true, retry_after_s: 5 } }),
    );
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    expect(outbox.get(op.op_id)?.next_attempt_at).toBe(time.now + 5_000);
  });

  it("follows the problem's retriable flag over the status: a 401 ingest calls final fails at once", async () => {
    const { outbox, transport, path } = setup();
    transport.then(
      http(401, {
        problem: {
          code: "unauthorized",
          retriable: false,
          detail: "token expired; get a new token",
        },
      }),
    );
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    expect(path(op.op_id)).toEqual(["pending", "inflight", "failed"]);
    expect(outbox.get(op.op_id)?.error?.message).toBe("token expired; get a new token");
  });

  it("moves to failed after the last allowed attempt, saying so", async () => {
    const { outbox, transport, time, path } = setup({ maxAttempts: 3 });
    for (let i = 0; i < 3; i++) transport.then(http(503));
    const op = makeOp();
    await outbox.enqueue(op);
    for (let i = 0; i < 3; i++) {
      await settle(outbox);
      time.advance(60_000);
    }
    await settle(outbox);
    expect(transport.calls).toHaveLength(3);
    expect(path(op.op_id)).toEqual([
      "pending",
      "inflight",
      "retrying",
      "inflight",
      "retrying",
      "inflight",
      "failed",
    ]);
    expect(outbox.get(op.op_id)?.error?.message).toMatch(/gave up after 3 attempts/);
    expect(time.nextAt()).toBeNull();
  });

  it("retries a rejected op that the server marks retriable", async () => {
    const { outbox, transport } = setup();
    const op = makeOp();
    transport.then((b) =>
      transport.accept(b, {
        [op.op_id]: {
          status: "rejected",
          code: "clock_skew",
          message: "hlc ahead",
          retriable: true,
        },
      }),
    );
    await outbox.enqueue(op);
    await settle(outbox);
    expect(outbox.get(op.op_id)).toMatchObject({
      status: "retrying",
      error: { code: "clock_skew" },
    });
  });

  it("'Sync now' sends a retrying op at once, ignoring its backoff", async () => {
    const { outbox, transport, path } = setup();
    transport.then(http(503, { retryAfterMs: 3_600_000 }));
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    await outbox.syncNow();
    expect(transport.calls).toHaveLength(2);
    expect(path(op.op_id).at(-1)).toBe("sent");
  });
});

describe("Outbox failures", () => {
  it("fails an op at once on a non-retryable 4xx, with the server's reason", async () => {
    const { outbox, transport, path } = setup();
    transport.then(
      http(422, {
        problem: {
          type: "about:blank",
          title: "Invalid op",
          status: 422,
          code: "invalid_op",
          detail: "collection must match [a-z]…",
        },
      }),
    );
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    expect(path(op.op_id)).toEqual(["pending", "inflight", "failed"]);
    expect(outbox.get(op.op_id)?.error).toMatchObject({
      code: "invalid_op",
      message: "collection must match [a-z]…",
      http_status: 422,
      retriable: false,
    });
  });

  it("fails only the op that ingest rejected and sends the rest", async () => {
    const { outbox, transport } = setup();
    const gate = deferred<PostResult>();
    transport.then(() => gate.promise);
    const first = makeOp();
    const [good1, bad, good2] = [makeOp(), makeOp(), makeOp()];
    await outbox.enqueue(first);
    await tick();
    await outbox.enqueue(good1);
    await outbox.enqueue(bad);
    await outbox.enqueue(good2);
    gate.resolve(transport.accept({ ops: [first] }));
    transport.then((b) =>
      transport.accept(b, {
        [bad.op_id]: {
          status: "rejected",
          code: "op_too_large",
          message: "op is 70000 bytes",
          retriable: false,
        },
      }),
    );
    await settle(outbox);
    expect(outbox.get(bad.op_id)).toMatchObject({
      status: "failed",
      error: { code: "op_too_large" },
    });
    expect(outbox.get(good1.op_id)?.status).toBe("sent");
    expect(outbox.get(good2.op_id)?.status).toBe("sent");
  });

  it("splits a batch refused as a whole so one bad op never blocks the others", async () => {
    const { outbox, transport } = setup();
    const gate = deferred<PostResult>();
    transport.then(() => gate.promise);
    const first = makeOp();
    const [a, bad, c] = [makeOp(), makeOp({ huge: "x" }), makeOp()];
    await outbox.enqueue(first);
    await tick();
    for (const op of [a, bad, c]) await outbox.enqueue(op);
    gate.resolve(transport.accept({ ops: [first] }));
    const refuseBad = (batch: { ops: Op[] }): PostResult =>
      batch.ops.some((o) => o.op_id === bad.op_id)
        ? http(413, { problem: { code: "batch_too_large", detail: "too big" } })
        : transport.accept(batch as never);
    for (let i = 0; i < 4; i++) transport.then(refuseBad);
    await settle(outbox);
    expect(outbox.get(a.op_id)?.status).toBe("sent");
    expect(outbox.get(c.op_id)?.status).toBe("sent");
    expect(outbox.get(bad.op_id)).toMatchObject({
      status: "failed",
      error: { code: "batch_too_large" },
    });
  });

  it("sends a new op while an older one waits in backoff", async () => {
    const { outbox, transport } = setup();
    transport.then(http(503, { retryAfterMs: 600_000 }));
    const old = makeOp();
    await outbox.enqueue(old);
    await settle(outbox);
    const fresh = makeOp();
    await outbox.enqueue(fresh);
    await settle(outbox);
    expect(outbox.get(fresh.op_id)?.status).toBe("sent");
    expect(outbox.get(old.op_id)?.status).toBe("retrying");
  });

  it("retry puts a failed op back as pending with fresh attempts; discard drops it", async () => {
    const { outbox, transport, path, store } = setup();
    transport.then(http(400)).then(http(400));
    const a = makeOp();
    await outbox.enqueue(a);
    await settle(outbox);
    const b = makeOp();
    await outbox.enqueue(b);
    await settle(outbox);
    await outbox.retry(a.op_id);
    await settle(outbox);
    expect(path(a.op_id)).toEqual(["pending", "inflight", "failed", "pending", "inflight", "sent"]);
    expect(outbox.get(a.op_id)?.attempts).toBe(1);
    await outbox.discard(b.op_id);
    expect(path(b.op_id).at(-1)).toBe("removed");
    expect(await store.getOp(b.op_id)).toBeUndefined();
  });

  it("discards a conflicted op (dismiss)", async () => {
    const { outbox } = setup();
    const op = makeOp();
    await outbox.enqueue(op);
    await settle(outbox);
    await outbox.onConflict(conflictFor(op, "x"));
    await outbox.discard(op.op_id);
    expect(outbox.list()).toEqual([]);
  });
});

describe("Outbox offline", () => {
  it("sends nothing while offline, so a long offline spell uses up no attempts", async () => {
    const time = new ManualTime();
    const transport = new ScriptedTransport();
    let online = false;
    const outbox = new Outbox({
      store: new MemoryStore(),
      transport,
      clientId: ME,
      backoff: { maxAttempts: 2 },
      now: time.clock,
      timers: time,
      canSend: () => online,
    });
    const op = makeOp();
    await outbox.enqueue(op);
    for (let i = 0; i < 10; i++) {
      time.advance(3_600_000);
      await outbox.syncNow();
    }
    expect(transport.calls).toHaveLength(0);
    expect(outbox.get(op.op_id)).toMatchObject({ status: "pending", attempts: 0 });
    expect(time.nextAt()).toBeNull(); // no timer spinning while offline
    online = true;
    await outbox.syncNow();
    expect(outbox.get(op.op_id)).toMatchObject({ status: "sent", attempts: 1 });
  });
});

describe("Outbox durability and tabs", () => {
  it("keeps the queue across a reload of the IndexedDB store", async () => {
    const time = new ManualTime();
    const offline = new ScriptedTransport();
    for (let i = 0; i < 3; i++) offline.then({ kind: "network", message: "offline" });
    let store: Store = await IdbStore.open("outbox-reload");
    const first = setup({ store, transport: offline, time });
    const ops = [makeOp(), makeOp(), makeOp(null)];
    for (const op of ops) await first.outbox.enqueue(op);
    await settle(first.outbox);
    first.outbox.stop();
    store.close();

    store = await IdbStore.open("outbox-reload");
    const second = setup({ store, time });
    await second.outbox.load();
    expect(second.outbox.list().map((r) => [r.op.op_id, r.status])).toEqual(
      ops.map((o) => [o.op_id, "retrying"]),
    );
    expect(second.outbox.list()[2]?.op.kind).toBe("delete");
    await second.outbox.syncNow();
    expect(second.transport.sentIds()).toEqual(ops.map((o) => o.op_id));
    store.close();
  });

  it("resends ops left inflight by a tab that closed mid-request", async () => {
    const data = createMemoryData();
    const hung = new ScriptedTransport().then(() => new Promise<PostResult>(() => {}));
    const first = setup({ store: new MemoryStore(data), transport: hung });
    const op = makeOp();
    await first.outbox.enqueue(op);
    await new Promise((r) => setTimeout(r, 0));
    expect(first.outbox.get(op.op_id)?.status).toBe("inflight");

    const second = setup({ store: new MemoryStore(data) });
    await second.outbox.load();
    await second.outbox.drain();
    expect(second.path(op.op_id)).toEqual(["inflight", "retrying", "inflight", "sent"]);
  });

  it("lets only one tab drain at a time, so no op is posted twice", async () => {
    const data = createMemoryData();
    const lock = localLock(); // stands in for navigator.locks shared by the tabs
    const transport = new ScriptedTransport();
    const mk = () =>
      new Outbox({
        store: new MemoryStore(data),
        transport,
        clientId: ME,
        lock,
        timers: new ManualTime(),
      });
    const tab1 = mk();
    const tab2 = mk();
    const ops = [makeOp(), makeOp(), makeOp()];
    for (const op of ops) await tab1.enqueue(op);
    await Promise.all([tab1.drain(), tab2.drain(), tab1.syncNow(), tab2.syncNow()]);
    expect(transport.sentIds().sort()).toEqual(ops.map((o) => o.op_id).sort());
  });
});
