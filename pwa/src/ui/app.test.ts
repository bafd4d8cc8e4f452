// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Conflict, EntityState } from "../generated/schemas";
import { seededRandom } from "../outbox/backoff";
import { MemoryStore } from "../store/memory";
import { SyncEngine, TASKS } from "../sync/engine";
import { formatHlc } from "../sync/hlc";
import { ManualTime, ScriptedTransport } from "../testing/fakes";
import { App, describeOp, waitingDetail, waitingText } from "./app";

const tick = () => new Promise((r) => setTimeout(r, 0));
const WALL = 1_700_000_000_000;

let root: HTMLElement;
let engine: SyncEngine;
let transport: ScriptedTransport;
let reload: ReturnType<typeof vi.fn>;
let saveToken: ReturnType<typeof vi.fn>;

async function mount(tokenSource: "config" | "dev" | "none" = "config", network = () => true) {
  const time = new ManualTime();
  transport = new ScriptedTransport();
  let n = 0;
  engine = await SyncEngine.open({
    store: new MemoryStore(),
    transport,
    socketFactory: null,
    wsBase: () => "ws://x",
    token: () => "t",
    appVersion: "0.1.0",
    protocol: 1,
    wallClock: time.clock,
    random: seededRandom(1),
    timers: time,
    newId: () => `id-${++n}-abcdefgh`,
    browserOnline: network,
  });
  reload = vi.fn();
  saveToken = vi.fn();
  root = document.createElement("div");
  document.body.replaceChildren(root);
  new App(root, engine, { tokenSource, reload, saveToken });
}

async function settle() {
  for (let i = 0; i < 4; i++) {
    await engine.outbox.drain();
    await tick();
  }
}

const q = <T extends Element = HTMLElement>(id: string) =>
  root.querySelector<T & HTMLElement>(`[data-testid="${id}"]`);
const qa = (id: string) => [...root.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`)];

function addTask(title: string) {
  const input = q<HTMLInputElement>("new-task-input")!;
  input.value = title;
  q<HTMLFormElement>("new-task-form")!.dispatchEvent(new Event("submit", { cancelable: true }));
}

function serverTask(
  id: string,
  title: string,
  version: number,
  wall: number,
  client = "web-other",
): EntityState {
  const hlc = formatHlc(wall, 0, client);
  return {
    tenant: "acme",
    collection: TASKS,
    entity_id: id,
    version,
    fields: {
      title: { value: title as never, hlc, client_id: client, op_id: `o-${version}` },
      done: { value: false as never, hlc, client_id: client, op_id: `o-${version}` },
    },
    deleted_hlc: null,
    deleted_by: null,
    deleted_op_id: null,
    deleted: false,
    last_op_id: `o-${version}`,
    received_at_ms: 1,
  };
}

beforeEach(async () => {
  await mount();
});

afterEach(() => {
  engine.stop();
});

describe("the task app", () => {
  it("adds a task from the form and lists it with an accessible checkbox", async () => {
    addTask("Buy milk");
    await tick();
    expect(qa("task-title").map((e) => e.textContent)).toEqual(["Buy milk"]);
    const box = q<HTMLInputElement>("task-done")!;
    expect(box.getAttribute("aria-label")).toBe("Done: Buy milk");
    expect(root.querySelector(`label[for="${box.id}"]`)?.textContent).toContain("Buy milk");
    expect(q("empty")!.hidden).toBe(true);
  });

  it("counts unsynced changes in the banner and flushes them with Sync now", async () => {
    for (let i = 0; i < 10; i++) transport.then({ kind: "network", message: "offline" });
    addTask("a");
    await settle();
    addTask("b");
    addTask("c");
    await settle();
    await tick();
    expect(q("sync-banner")!.hidden).toBe(false);
    expect(q("sync-count")!.textContent).toBe("3 changes waiting to sync");
    transport.clear(); // back online
    q("sync-now")!.click();
    await settle();
    await tick();
    expect(q("sync-banner")!.hidden).toBe(true);
  });

  it("says under the count why changes wait out a backoff, and when they are tried next", async () => {
    transport.then({
      kind: "http_error",
      status: 503,
      problem: { detail: "the broker did not answer; try again later.", retriable: true },
      retryAfterMs: 3_600_000,
    });
    addTask("a");
    await settle();
    await tick();
    expect(q("sync-count")!.textContent).toBe("1 change waiting to sync");
    expect(q("sync-detail")!.hidden).toBe(false);
    expect(q("sync-detail")!.textContent).toMatch(
      /^Not sent yet \(the broker did not answer; try again later\)\. Next try at .+\.$/,
    );
    q("sync-now")!.click();
    await settle();
    await tick();
    expect(q("sync-banner")!.hidden).toBe(true);
  });

  it("says offline changes wait for the network, with Sync now disabled until it is back", async () => {
    let online = false;
    await mount("config", () => online);
    addTask("a");
    await settle();
    await tick();
    expect(transport.calls).toHaveLength(0);
    expect(q("sync-detail")!.textContent).toBe(
      "You are offline: they will be sent when you are back online.",
    );
    expect(q<HTMLButtonElement>("sync-now")!.disabled).toBe(true);
    online = true;
    engine.setOnline(true);
    await settle();
    await tick();
    expect(transport.calls).toHaveLength(1);
    expect(q("sync-banner")!.hidden).toBe(true);
  });

  it("toggles done, edits a title with the keyboard, and deletes", async () => {
    addTask("Buy milk");
    await settle();
    q<HTMLInputElement>("task-done")!.click();
    await tick();
    expect(engine.tasks()[0]?.done).toBe(true);
    expect(q("task")!.classList.contains("done")).toBe(true);

    q("task-edit")!.click();
    const input = q<HTMLInputElement>("task-edit-input")!;
    expect(document.activeElement).toBe(input);
    input.value = "Buy oat milk";
    q<HTMLFormElement>("task-edit-form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    await tick();
    expect(q("task-title")!.textContent).toBe("Buy oat milk");
    expect(document.activeElement).toBe(q("task-edit"));

    q("task-edit")!.click();
    q<HTMLInputElement>("task-edit-input")!.dispatchEvent(
      new KeyboardEvent("keydown", { key: "Escape", cancelable: true }),
    );
    expect(q<HTMLFormElement>("task-edit-form")!.hidden).toBe(true);

    q("task-delete")!.click();
    await tick();
    expect(qa("task")).toHaveLength(0);
  });

  it("shows a ticked checkbox at once, even if something re-renders before the op is stored", async () => {
    addTask("Buy milk");
    await settle();
    const box = q<HTMLInputElement>("task-done")!;
    box.click();
    expect(engine.tasks()[0]?.done).toBe(true); // in the local view in the same tick
    expect(box.checked).toBe(true);
  });

  it("keeps an open edit while server updates re-render the list", async () => {
    await engine.handle({ type: "entity", cursor: "c", state: serverTask("t1", "first", 1, 10) });
    await tick();
    q("task-edit")!.click();
    const input = q<HTMLInputElement>("task-edit-input")!;
    input.value = "typing…";
    await engine.handle({ type: "entity", cursor: "c", state: serverTask("t2", "second", 1, 10) });
    await tick();
    expect(q<HTMLInputElement>("task-edit-input")).toBe(input);
    expect(input.value).toBe("typing…");
    expect(qa("task")).toHaveLength(2);
  });

  it("lists failed changes under Needs attention with Retry and Discard", async () => {
    transport.then({
      kind: "http_error",
      status: 422,
      problem: { code: "invalid_op", detail: "title too long" },
      retryAfterMs: null,
    });
    addTask("Buy milk");
    await settle();
    await tick();
    expect(q("needs-attention")!.hidden).toBe(false);
    expect(q("attention-reason")!.textContent).toBe("title too long");
    expect(q("attention-retry")!.getAttribute("aria-label")).toBe("Retry: Create 'Buy milk'");
    q("attention-retry")!.click();
    await settle();
    await tick();
    expect(q("needs-attention")!.hidden).toBe(true);
  });

  it("shows the conflict hint and applies mine again", async () => {
    await engine.handle({
      type: "entity",
      cursor: "c",
      state: serverTask("t1", "Buy milk", 1, 10),
    });
    await engine.setTitle("t1", "Buy soy milk");
    await settle();
    const op = engine.outbox.list()[0]!.op;
    const winner = serverTask("t1", "Buy oat milk", 2, WALL + 1_000_000);
    await engine.handle({ type: "entity", cursor: "c", state: winner });
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
            hlc: winner.fields.title!.hlc,
            client_id: "web-other",
            op_id: "o-2",
            deleted: false,
          },
        },
      },
    };
    await engine.handle({ type: "conflict", conflict });
    await tick();
    expect(q("conflict-text")!.textContent).toBe("kept 'Buy oat milk' from another device");
    expect(q("task-title")!.textContent).toBe("Buy oat milk");
    q("conflict-apply-mine")!.click();
    await tick();
    await tick();
    expect(q("conflict-hint")).toBeNull();
    expect(q("task-title")!.textContent).toBe("Buy soy milk");
  });

  it("shows the version banner when the server runs another version, and reloads on request", async () => {
    const limits = {
      max_bps: 1,
      burst_bytes: 1,
      max_frame_bytes: 1,
      max_client_messages_per_s: 1,
      idle_timeout_ms: 1,
      max_subscriptions: 1,
    };
    expect(q("version-banner")!.hidden).toBe(true);
    await engine.handle({
      type: "hello",
      protocol: 1,
      app_version: "9.9.9",
      server_hlc: formatHlc(WALL, 0, "push"),
      limits,
    });
    await tick();
    expect(q("version-banner")!.hidden).toBe(false);
    expect(q("version-banner")!.getAttribute("role")).toBe("alert");
    q("version-reload")!.click();
    expect(reload).toHaveBeenCalledOnce();
  });

  it("shows the connection state", async () => {
    expect(q("connection")!.textContent).toBe("Online"); // no push configured: the browser's view
  });

  it("opens the dev token form when no token is configured and saves what is typed", async () => {
    await mount("none");
    expect(q<HTMLDetailsElement>("settings")!.open).toBe(true);
    q<HTMLInputElement>("dev-token-input")!.value = " eyJ.dev ";
    q<HTMLFormElement>("dev-token-form")!.dispatchEvent(new Event("submit", { cancelable: true }));
    expect(saveToken).toHaveBeenCalledWith("eyJ.dev");
  });
});

describe("texts", () => {
  it("says how many changes wait", () => {
    expect(waitingText(1)).toBe("1 change waiting to sync");
    expect(waitingText(3)).toBe("3 changes waiting to sync");
  });

  it("explains waiting changes: offline first, then the soonest retry", () => {
    const at = (ms: number) => `t+${ms}`;
    expect(waitingDetail({ network: false, nextRetry: { at: 5, reason: "x" } }, at)).toBe(
      "You are offline: they will be sent when you are back online.",
    );
    expect(waitingDetail({ network: true, nextRetry: null }, at)).toBe("");
    expect(
      waitingDetail({ network: true, nextRetry: { at: 5, reason: "rate limited." } }, at),
    ).toBe("Not sent yet (rate limited). Next try at t+5.");
    expect(waitingDetail({ network: true, nextRetry: { at: 5, reason: "" } }, at)).toBe(
      "Not sent yet. Next try at t+5.",
    );
  });

  it("describes ops for the needs-attention list", () => {
    const base = {
      op_id: "o",
      client_id: "c",
      collection: TASKS,
      entity_id: "t",
      hlc: formatHlc(1, 0, "c"),
    };
    expect(describeOp({ ...base, kind: "delete" }, "x")).toBe("Delete task 'x'");
    expect(describeOp({ ...base, kind: "upsert", fields: { title: "y" } })).toBe("Rename to 'y'");
    expect(describeOp({ ...base, kind: "upsert", fields: { done: true } }, "x")).toBe(
      "Mark 'x' done",
    );
  });
});
