// @vitest-environment happy-dom
import "fake-indexeddb/auto";
import { afterEach, describe, expect, it } from "vitest";
import { boot } from "./boot";
import type { SyncEngine } from "./sync/engine";
import { socketFactory } from "./testing/fakes";

const tick = () => new Promise((r) => setTimeout(r, 0));

/** Wait for a condition with a deadline (never a fixed sleep). */
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await tick();
  }
}
let n = 0;
let engine: SyncEngine | null = null;

afterEach(() => {
  engine?.stop();
  engine = null;
});

async function start(opts: { token?: string | null; online?: boolean } = {}) {
  n += 1;
  const root = document.createElement("div");
  document.body.replaceChildren(root);
  const sockets = socketFactory();
  const requests: { url: string; init: RequestInit }[] = [];
  const nav = { onLine: opts.online ?? true };
  const events = new EventTarget();
  const fetchFn = (async (url: string, init: RequestInit) => {
    requests.push({ url, init });
    const ops = (JSON.parse(init.body as string) as { ops: { op_id: string }[] }).ops;
    const body = {
      results: ops.map((o) => ({ op_id: o.op_id, status: "accepted" })),
      server_hlc: "001800000000000-0000-ingest",
    };
    return new Response(JSON.stringify(body), { status: 202 });
  }) as unknown as typeof fetch;
  const booted = await boot({
    root,
    rawConfig: {
      apiBase: "http://127.0.0.1:8080",
      wsBase: "ws://127.0.0.1:8081",
      token: opts.token === undefined ? "jwt" : opts.token,
    },
    location: { protocol: "http:", host: "127.0.0.1:5173", origin: "http://127.0.0.1:5173" },
    storage: null,
    fetch: fetchFn,
    openSocket: sockets.factory,
    events,
    navigator: nav,
    channel: null,
    reload: () => {},
    dbName: `boot-${n}`,
  });
  engine = booted.engine;
  return { ...booted, root, sockets, requests, nav, events };
}

describe("boot", () => {
  it("renders the app, connects to push with the client id and posts ops with the token", async () => {
    const { root, sockets, requests, engine: e } = await start();
    expect(root.querySelector("h1")?.textContent).toBe("Tasks");
    expect(sockets.last().url).toBe(`ws://127.0.0.1:8081/v1/ws?client_id=${e.clientId}&token=jwt`);
    const input = root.querySelector<HTMLInputElement>('[data-testid="new-task-input"]')!;
    input.value = "Buy milk";
    root
      .querySelector('[data-testid="new-task-form"]')!
      .dispatchEvent(new Event("submit", { cancelable: true }));
    await until(() => e.outbox.list().some((r) => r.status === "sent"));
    expect(requests[0]?.url).toBe("http://127.0.0.1:8080/v1/ops");
    expect((requests[0]?.init.headers as Record<string, string>).authorization).toBe("Bearer jwt");
    expect(e.outbox.list().map((r) => r.status)).toEqual(["sent"]);
    expect(e.clock.last! > "001800000000000-0000-ingest").toBe(true);
  });

  it("queues while offline and flushes when the browser comes back online", async () => {
    const { requests, nav, events, engine: e } = await start({ online: false });
    await e.createTask("offline");
    await e.outbox.drain();
    expect(requests).toHaveLength(0);
    expect(e.status().waiting).toBe(1);
    nav.onLine = true;
    events.dispatchEvent(new Event("online"));
    await until(() => e.status().waiting === 0);
    expect(requests).toHaveLength(1);
    expect(e.status().waiting).toBe(0);
  });

  it("opens the dev token form when /config.js gave no token", async () => {
    const { root, sockets } = await start({ token: null });
    expect(root.querySelector<HTMLDetailsElement>('[data-testid="settings"]')?.open).toBe(true);
    expect(sockets.sockets).toHaveLength(0);
  });
});
