import { describe, expect, it } from "vitest";
import type {
  Conflict,
  EntityState,
  FieldRegister,
  Receipt,
  ServerMessage,
} from "../generated/schemas";
import { seededRandom } from "../outbox/backoff";
import { MemoryStore, createMemoryData } from "../store/memory";
import { ManualTime, ScriptedTransport, socketFactory } from "../testing/fakes";
import { SyncEngine, TASKS, randomId } from "./engine";
import { formatHlc } from "./hlc";

const tick = () => new Promise((r) => setTimeout(r, 0));

async function setup(
  opts: {
    data?: ReturnType<typeof createMemoryData>;
    transport?: ScriptedTransport;
    push?: boolean;
  } = {},
) {
  const time = new ManualTime();
  const transport = opts.transport ?? new ScriptedTransport();
  const sockets = socketFactory();
  const store = new MemoryStore(opts.data ?? createMemoryData());
  let ids = 0;
  const engine = await SyncEngine.open({
    store,
    transport,
    socketFactory: opts.push ? sockets.factory : null,
    wsBase: () => "ws://push",
    token: () => "tok",
    appVersion: "0.1.0",
    protocol: 1,
    wallClock: time.clock,
    random: seededRandom(5),
    timers: time,
    newId: () => `id-${++ids}-xxxxxxxx`,
  });
  const settle = async () => {
    for (let i = 0; i < 4; i++) {
      await engine.outbox.drain();
      await tick();
    }
  };
  return { engine, store, transport, time, sockets, settle };
}

function reg(value: unknown, wall: number, client: string, opId: string): FieldRegister {
  return { value: value as never, hlc: formatHlc(wall, 0, client), client_id: client, op_id: opId };
}

function state(
  id: string,
  version: number,
  fields: Record<string, FieldRegister>,
  deleted?: { wall: number; by: string },
): EntityState {
  const dh = deleted ? formatHlc(deleted.wall, 0, deleted.by) : null;
  return {
    tenant: "acme",
    collection: TASKS,
    entity_id: id,
    version,
    fields,
    deleted_hlc: dh,
    deleted_by: deleted?.by ?? null,
    deleted_op_id: deleted ? "del-op" : null,
    deleted: deleted !== undefined && Object.keys(fields).length === 0,
    last_op_id: "x",
    received_at_ms: 1,
  };
}

const WALL = 1_700_000_000_000;

describe("SyncEngine push handling", () => {
  it("adopts the server HLC from hello so the next op is stamped after it", async () => {
    const { engine } = await setup();
    await engine.handle({
      type: "hello",
      protocol: 1,
      app_version: "0.1.0",
      server_hlc: formatHlc(WALL + 3_600_000, 7, "push-1"),
      limits: {
        max_bps: 1,
        burst_bytes: 1,
        max_frame_bytes: 1,
        max_client_messages_per_s: 1,
        idle_timeout_ms: 1,
        max_subscriptions: 1,
      },
    });
    await engine.createTask("later");
    const op = engine.outbox.list()[0]?.op;
    expect(op && op.hlc > formatHlc(WALL + 3_600_000, 7, "push-1")).toBe(true);
    expect(engine.status().versionMismatch).toBeNull();
  });

  it("flags a new version when hello reports another protocol or app version", async () => {
    const { engine } = await setup();
    const limits = {
      max_bps: 1,
      burst_bytes: 1,
      max_frame_bytes: 1,
      max_client_messages_per_s: 1,
      idle_timeout_ms: 1,
      max_subscriptions: 1,
    };
    await engine.handle({
      type: "hello",
      protocol: 1,
      app_version: "0.2.0",
      server_hlc: formatHlc(WALL, 0, "p"),
      limits,
    });
    expect(engine.status().versionMismatch).toEqual({ protocol: 1, app_version: "0.2.0" });
    await engine.handle({
      type: "hello",
      protocol: 2,
      app_version: "0.1.0",
      server_hlc: formatHlc(WALL, 0, "p"),
      limits,
    });
    expect(engine.status().versionMismatch?.protocol).toBe(2);
  });

  it("replaces the collection on a full snapshot and merges by version on a resumed one", async () => {
    const { engine, store } = await setup();
    await engine.handle({
      type: "snapshot",
      collection: TASKS,
      resumed: false,
      cursor: "c1",
      entities: [
        state("a", 1, { title: reg("A", 10, "web-b", "o1") }),
        state("b", 1, { title: reg("B", 10, "web-b", "o2") }),
      ],
    });
    expect(engine.tasks().map((t) => t.title)).toEqual(["A", "B"]);
    await engine.handle({
      type: "snapshot",
      collection: TASKS,
      resumed: true,
      cursor: "c2",
      entities: [
        state("b", 3, { title: reg("B3", 12, "web-b", "o3") }),
        state("a", 1, { title: reg("stale", 9, "web-b", "o0") }),
      ],
    });
    expect(engine.tasks().map((t) => t.title)).toEqual(["A", "B3"]);
    await engine.handle({
      type: "snapshot",
      collection: TASKS,
      resumed: false,
      cursor: "c3",
      entities: [state("c", 1, { title: reg("C", 10, "web-b", "o4") })],
    });
    expect(engine.tasks().map((t) => t.title)).toEqual(["C"]);
    expect(await store.getCursor(TASKS)).toBe("c3");
    expect((await store.listEntities(TASKS)).map((e) => e.entity_id)).toEqual(["c"]);
  });

  it("keeps a server entity only if its version is newer, and stores the cursor", async () => {
    const { engine, store } = await setup();
    await engine.handle({
      type: "entity",
      cursor: "c1",
      state: state("a", 2, { title: reg("v2", 20, "web-b", "o2") }),
    });
    await engine.handle({
      type: "entity",
      cursor: "c2",
      state: state("a", 1, { title: reg("v1", 10, "web-b", "o1") }),
    });
    expect(engine.tasks()[0]?.title).toBe("v2");
    expect((await store.getEntity(TASKS, "a"))?.version).toBe(2);
    expect(await store.getCursor(TASKS)).toBe("c2");
  });

  it("accepts a batch anywhere: snapshot, entity and receipt in one frame", async () => {
    const { engine } = await setup();
    const messages: ServerMessage[] = [
      { type: "snapshot", collection: TASKS, resumed: false, cursor: "c1", entities: [] },
      {
        type: "entity",
        cursor: "c2",
        state: state("a", 1, { title: reg("A", 10, "web-b", "o1") }),
      },
      { type: "pong" },
    ];
    await engine.handle({ type: "batch", messages: messages as never });
    expect(engine.tasks().map((t) => t.title)).toEqual(["A"]);
  });

  it("stores the cursor of a disconnect_notice and reports error messages", async () => {
    const { engine, store } = await setup();
    await engine.handle({
      type: "disconnect_notice",
      reason: "overloaded",
      retry_after_ms: 1000,
      cursor: "c9",
    });
    await engine.handle({
      type: "error",
      code: "unknown_collection",
      message: "subscribe to tasks",
    });
    expect(await store.getCursor(TASKS)).toBe("c9");
    expect(engine.status().lastError).toBe("unknown_collection: subscribe to tasks");
  });

  it("subscribes over the socket with the cursor kept in the store", async () => {
    const data = createMemoryData();
    await new MemoryStore(data).setCursor(TASKS, "kept-cursor");
    const { engine, sockets } = await setup({ data, push: true });
    engine.start();
    sockets.last().open();
    await engine.push?.idle();
    expect(sockets.last().sent).toEqual([
      { type: "subscribe", collection: TASKS, cursor: "kept-cursor" },
    ]);
    expect(sockets.last().url).toBe(`ws://push/v1/ws?client_id=${engine.clientId}&token=tok`);
    expect(engine.status().online).toBe(true);
    sockets.last().drop();
    expect(engine.status().online).toBe(false);
    engine.stop();
  });
});

describe("SyncEngine without a token", () => {
  it("neither connects to push nor sends ops, and keeps them pending", async () => {
    const time = new ManualTime();
    const sockets = socketFactory();
    const transport = new ScriptedTransport();
    const engine = await SyncEngine.open({
      store: new MemoryStore(),
      transport,
      socketFactory: sockets.factory,
      wsBase: () => "ws://push",
      token: () => null,
      appVersion: "0.1.0",
      protocol: 1,
      wallClock: time.clock,
      timers: time,
    });
    engine.start();
    await engine.createTask("offline first");
    await engine.syncNow();
    expect(sockets.sockets).toHaveLength(0);
    expect(transport.calls).toHaveLength(0);
    expect(engine.status().waiting).toBe(1);
    engine.stop();
  });
});

describe("SyncEngine local view", () => {
  it("shows an edit at once and keeps it, without flicker, through send and reconciliation", async () => {
    const { engine, transport, settle } = await setup();
    transport.then({ kind: "network", message: "offline" });
    const id = await engine.createTask("Buy milk");
    const seen: string[] = [];
    const look = () =>
      seen.push(
        engine
          .tasks()
          .map((t) => `${t.title}:${t.unsynced}`)
          .join(","),
      );
    look();
    expect(engine.status().waiting).toBe(1);
    await settle();
    look();
    await engine.syncNow();
    look();
    const op = engine.outbox.list()[0]!.op;
    await engine.handle({
      type: "entity",
      cursor: "c1",
      state: state(id, 1, { title: reg("Buy milk", 0, "x", "x"), done: reg(false, 0, "x", "x") }),
    });
    look();
    // the real state carries this op's registers
    const s = state(id, 1, {
      title: { value: "Buy milk" as never, hlc: op.hlc, client_id: op.client_id, op_id: op.op_id },
      done: { value: false as never, hlc: op.hlc, client_id: op.client_id, op_id: op.op_id },
    });
    await engine.handle({ type: "entity", cursor: "c2", state: { ...s, version: 2 } });
    look();
    expect(new Set(seen.map((v) => v.split(":")[0]))).toEqual(new Set(["Buy milk"]));
    expect(engine.outbox.list()).toEqual([]);
    expect(engine.status().waiting).toBe(0);
  });

  it("rebases pending edits on server updates: another field from another device shows too", async () => {
    const { engine, transport } = await setup();
    transport.then({ kind: "network", message: "offline" });
    await engine.handle({
      type: "entity",
      cursor: "c1",
      state: state("t1", 1, {
        title: reg("old", 10, "web-b", "o1"),
        done: reg(false, 10, "web-b", "o1"),
      }),
    });
    await engine.setTitle("t1", "mine");
    await engine.handle({
      type: "entity",
      cursor: "c2",
      state: state("t1", 2, {
        title: reg("old", 10, "web-b", "o1"),
        done: reg(true, WALL + 999_999, "web-b", "o2"),
      }),
    });
    expect(engine.tasks()).toMatchObject([{ id: "t1", title: "mine", done: true, unsynced: true }]);
  });

  it("hides a task deleted locally, and shows failed ops in the status", async () => {
    const { engine, transport, settle } = await setup();
    transport.then({
      kind: "http_error",
      status: 403,
      problem: { code: "forbidden", detail: "not your tenant" },
      retryAfterMs: null,
    });
    await engine.handle({
      type: "entity",
      cursor: "c1",
      state: state("t1", 1, { title: reg("x", 10, "web-b", "o1") }),
    });
    await engine.deleteTask("t1");
    expect(engine.tasks()).toEqual([]);
    await settle();
    expect(engine.status().failed.map((r) => r.error?.message)).toEqual(["not your tenant"]);
    expect(engine.tasks().map((t) => t.id)).toEqual(["t1"]); // a failed op is not applied
  });

  it("settles a sent op whose receipt was missed when the state containing it arrives", async () => {
    const { engine, settle } = await setup();
    await engine.setTitle("t1", "x");
    await settle();
    const op = engine.outbox.list()[0]!.op;
    expect(engine.outbox.list()[0]?.status).toBe("sent");
    await engine.handle({
      type: "snapshot",
      collection: TASKS,
      resumed: false,
      cursor: "c",
      entities: [
        state("t1", 1, {
          title: { value: "x" as never, hlc: op.hlc, client_id: op.client_id, op_id: op.op_id },
        }),
      ],
    });
    expect(engine.outbox.list()).toEqual([]);
  });
});

describe("SyncEngine conflicts", () => {
  async function lose() {
    const ctx = await setup();
    const { engine, settle } = ctx;
    await engine.handle({
      type: "entity",
      cursor: "c1",
      state: state("t1", 1, {
        title: reg("Buy milk", 10, "web-b", "o1"),
        done: reg(false, 10, "web-b", "o1"),
      }),
    });
    await engine.setTitle("t1", "Buy soy milk");
    await settle();
    const op = engine.outbox.list()[0]!.op;
    const winnerHlc = formatHlc(WALL + 5_000_000, 0, "web-b");
    await engine.handle({
      type: "entity",
      cursor: "c2",
      state: state("t1", 2, {
        title: { value: "Buy oat milk" as never, hlc: winnerHlc, client_id: "web-b", op_id: "ob" },
        done: reg(false, 10, "web-b", "o1"),
      }),
    });
    const conflict: Conflict = {
      op_id: op.op_id,
      tenant: "acme",
      client_id: op.client_id,
      user_id: "u",
      collection: TASKS,
      entity_id: "t1",
      kind: "upsert",
      hlc: op.hlc,
      version: 2,
      received_at_ms: 1,
      fields: {
        title: {
          yours: { value: "Buy soy milk" as never, hlc: op.hlc, deleted: false },
          winner: {
            value: "Buy oat milk" as never,
            hlc: winnerHlc,
            client_id: "web-b",
            op_id: "ob",
            deleted: false,
          },
        },
      },
    };
    const receipt: Receipt = {
      op_id: op.op_id,
      tenant: "acme",
      client_id: op.client_id,
      user_id: "u",
      collection: TASKS,
      entity_id: "t1",
      kind: "upsert",
      hlc: op.hlc,
      status: "stale",
      version: 2,
      lost_fields: ["title"],
      reason: null,
      received_at_ms: 1,
    };
    return { ...ctx, op, conflict, receipt, winnerHlc };
  }

  it("shows what the server kept from another device", async () => {
    const { engine, conflict, receipt } = await lose();
    await engine.handle({
      type: "batch",
      messages: [
        { type: "receipt", receipt },
        { type: "conflict", conflict },
      ],
    });
    expect(engine.tasks()).toMatchObject([
      { title: "Buy oat milk", conflicts: [{ kept: "'Buy oat milk'" }] },
    ]);
  });

  it("shows the hint from the receipt alone, using the server state", async () => {
    const { engine, receipt } = await lose();
    await engine.handle({ type: "receipt", receipt });
    expect(engine.tasks()[0]?.conflicts.map((c) => c.kept)).toEqual(["'Buy oat milk'"]);
  });

  it("'apply mine again' sends my value as a new op with a fresh HLC that beats the winner", async () => {
    const { engine, conflict, settle, op, winnerHlc } = await lose();
    await engine.handle({ type: "conflict", conflict });
    await engine.applyMineAgain(op.op_id);
    const again = engine.outbox.list();
    expect(again).toHaveLength(1);
    expect(again[0]?.op.op_id).not.toBe(op.op_id);
    expect(again[0]?.op.fields).toEqual({ title: "Buy soy milk" });
    expect(again[0]!.op.hlc > winnerHlc).toBe(true);
    expect(engine.tasks()).toMatchObject([{ title: "Buy soy milk", conflicts: [] }]);
    await settle();
    expect(again[0] && engine.outbox.get(again[0].op.op_id)?.status).toBe("sent");
  });

  it("dismiss drops the hint and keeps the server's value", async () => {
    const { engine, conflict, op } = await lose();
    await engine.handle({ type: "conflict", conflict });
    await engine.dismissConflict(op.op_id);
    expect(engine.tasks()).toMatchObject([{ title: "Buy oat milk", conflicts: [] }]);
  });

  it("keeps a task deleted by another device visible while its conflict hint explains it", async () => {
    const { engine, op } = await lose();
    const del = state("t1", 3, {}, { wall: WALL + 9_000_000, by: "web-b" });
    await engine.handle({ type: "entity", cursor: "c3", state: del });
    const c: Conflict = {
      op_id: op.op_id,
      tenant: "acme",
      client_id: op.client_id,
      user_id: "u",
      collection: TASKS,
      entity_id: "t1",
      kind: "upsert",
      hlc: op.hlc,
      version: 3,
      received_at_ms: 1,
      fields: {
        title: {
          yours: { value: "Buy soy milk" as never, hlc: op.hlc, deleted: false },
          winner: {
            value: null as never,
            hlc: del.deleted_hlc!,
            client_id: "web-b",
            op_id: "del-op",
            deleted: true,
          },
        },
      },
    };
    await engine.handle({ type: "conflict", conflict: c });
    expect(engine.tasks()).toMatchObject([
      { id: "t1", deleted: true, title: "Buy soy milk", conflicts: [{ kept: "the deletion" }] },
    ]);
  });
});

describe("SyncEngine persistence", () => {
  it("keeps the client id, clock and queue across a reload", async () => {
    const data = createMemoryData();
    const offline = new ScriptedTransport();
    for (let i = 0; i < 5; i++) offline.then({ kind: "network", message: "offline" });
    const first = await setup({ data, transport: offline });
    await first.engine.createTask("a");
    await first.engine.createTask("b");
    await first.settle();
    const lastHlc = first.engine.clock.last!;
    first.engine.stop();
    const second = await setup({ data });
    expect(second.engine.clientId).toBe(first.engine.clientId);
    expect(second.engine.tasks().map((t) => t.title)).toEqual(["a", "b"]);
    expect(second.engine.status().waiting).toBe(2);
    await second.engine.createTask("c");
    expect(second.engine.clock.last! > lastHlc).toBe(true);
  });
});

describe("randomId", () => {
  it("makes a UUID v4 even where randomUUID is missing (plain http on a LAN)", () => {
    const id = randomId({ getRandomValues: (a) => globalThis.crypto.getRandomValues(a) });
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe("SyncEngine across tabs", () => {
  it("shows another tab's queued edit after its broadcast", async () => {
    const data = createMemoryData();
    type Ch = {
      postMessage(m: unknown): void;
      onmessage: ((ev: { data: unknown }) => void) | null;
    };
    const a: Ch = { postMessage: (m) => b.onmessage?.({ data: m }), onmessage: null };
    const b: Ch = { postMessage: (m) => a.onmessage?.({ data: m }), onmessage: null };
    const open = (channel: Ch) =>
      SyncEngine.open({
        store: new MemoryStore(data),
        transport: new ScriptedTransport(),
        socketFactory: null,
        wsBase: () => "ws://x",
        token: () => null, // nothing is sent: the ops stay pending
        appVersion: "0.1.0",
        protocol: 1,
        timers: new ManualTime(),
        channel,
      });
    const tabA = await open(a);
    const tabB = await open(b);
    expect(tabB.clientId).toBe(tabA.clientId); // one device, one client id
    await tabA.createTask("from tab A");
    for (let i = 0; i < 5 && tabB.tasks().length === 0; i++) await tick();
    expect(tabB.tasks().map((t) => t.title)).toEqual(["from tab A"]);
    expect(tabB.status().waiting).toBe(1);
    await tabB.createTask("from tab B");
    const [first, second] = tabB.outbox.list().map((r) => r.op.hlc);
    expect(second! > first!).toBe(true); // B moved past A's clock
  });
});
