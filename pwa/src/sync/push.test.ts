import { describe, expect, it } from "vitest";
import type { ServerMessage } from "../generated/schemas";
import { seededRandom } from "../outbox/backoff";
import { ManualTime, socketFactory } from "../testing/fakes";
import { PushClient, parseFrame, pushUrl, type PushState } from "./push";

const hello = (idle = 60_000): ServerMessage => ({
  type: "hello",
  protocol: 1,
  app_version: "0.1.0",
  server_hlc: "001700000000000-0000-push-1",
  limits: {
    max_bps: 1,
    burst_bytes: 1,
    max_frame_bytes: 1,
    max_client_messages_per_s: 1,
    idle_timeout_ms: idle,
    max_subscriptions: 1,
  },
});

function setup(cursor: string | null = null) {
  const time = new ManualTime();
  const sockets = socketFactory();
  const received: ServerMessage[] = [];
  const states: PushState[] = [];
  const cursors = { value: cursor };
  const client = new PushClient({
    wsBase: () => "wss://push.example/",
    token: () => "tok en",
    socketFactory: sockets.factory,
    timers: time,
    random: seededRandom(3),
    backoff: { baseMs: 500, capMs: 10_000 },
    subscriptions: async () => [{ collection: "tasks", cursor: cursors.value }],
    handler: {
      onMessage: (m) => {
        received.push(m);
      },
      onState: (s) => states.push(s),
    },
  });
  return { time, sockets, received, states, client, cursors };
}

describe("pushUrl and parseFrame", () => {
  it("puts the client id and token in the query of {wsBase}/v1/ws", () => {
    expect(pushUrl("ws://localhost:8081/", "a b", "web-1")).toBe(
      "ws://localhost:8081/v1/ws?client_id=web-1&token=a+b",
    );
    expect(pushUrl("ws://localhost:8081", null)).toBe("ws://localhost:8081/v1/ws");
  });

  it("unpacks a batch in order and drops nested batches", () => {
    const frame = JSON.stringify({
      type: "batch",
      messages: [
        { type: "pong" },
        { type: "error", code: "c", message: "m" },
        { type: "batch", messages: [] },
      ],
    });
    expect(parseFrame(frame).map((m) => m.type)).toEqual(["pong", "error"]);
  });

  it("rejects frames that are not JSON objects with a type", () => {
    expect(() => parseFrame("nope")).toThrow();
    expect(() => parseFrame("{}")).toThrow(/type/);
  });
});

describe("PushClient", () => {
  it("connects with the token and subscribes with the stored cursor once open", async () => {
    const { client, sockets } = setup("cur-7");
    client.start();
    const s = sockets.last();
    expect(s.url).toBe("wss://push.example/v1/ws?token=tok+en");
    s.open();
    await client.idle();
    expect(s.sent).toEqual([{ type: "subscribe", collection: "tasks", cursor: "cur-7" }]);
    expect(client.state).toBe("open");
  });

  it("hands every message of a batch to the handler, in order", async () => {
    const { client, sockets, received } = setup();
    client.start();
    sockets.last().open();
    sockets.last().receive({
      type: "batch",
      messages: [hello(), { type: "pong" }, { type: "error", code: "bad_frame", message: "x" }],
    });
    await client.idle();
    expect(received.map((m) => m.type)).toEqual(["hello", "pong", "error"]);
  });

  it("ignores a frame it cannot parse and keeps going", async () => {
    const { client, sockets, received } = setup();
    client.start();
    sockets.last().open();
    sockets.last().receive("{not json");
    sockets.last().receive({ type: "pong" });
    await client.idle();
    expect(received.map((m) => m.type)).toEqual(["pong"]);
  });

  it("reconnects after an abnormal close with a full-jitter delay that grows per attempt", async () => {
    const { client, sockets, time, states } = setup();
    client.start();
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 6; attempt++) {
      const before = sockets.sockets.length;
      const dropAt = time.now;
      sockets.last().drop(1006);
      const at = time.nextAt();
      expect(at).not.toBeNull();
      const delay = (at as number) - dropAt;
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(Math.min(10_000, 500 * 2 ** (attempt - 1)));
      delays.push(delay);
      time.advance(delay);
      expect(sockets.sockets.length).toBe(before + 1);
    }
    expect(states).toContain("waiting");
  });

  it("resets the backoff once the server says hello", async () => {
    const { client, sockets, time } = setup();
    client.start();
    for (let i = 0; i < 5; i++) {
      sockets.last().drop();
      time.advance(10_000);
    }
    sockets.last().open();
    sockets.last().receive(hello());
    await client.idle();
    const dropAt = time.now;
    sockets.last().drop();
    expect((time.nextAt() as number) - dropAt).toBeLessThan(500);
  });

  it("after a disconnect_notice reconnects after retry_after_ms and resubscribes with the new cursor", async () => {
    const { client, sockets, time, cursors } = setup("c1");
    client.start();
    sockets.last().open();
    sockets.last().receive({
      type: "disconnect_notice",
      reason: "overloaded",
      retry_after_ms: 4000,
      cursor: "c2",
    });
    await client.idle();
    cursors.value = "c2"; // the engine stores the notice's cursor
    sockets.last().drop(4000, "overloaded");
    time.advance(3999);
    expect(sockets.sockets).toHaveLength(1);
    time.advance(1);
    expect(sockets.sockets).toHaveLength(2);
    sockets.last().open();
    await client.idle();
    expect(sockets.last().sent).toEqual([{ type: "subscribe", collection: "tasks", cursor: "c2" }]);
  });

  it("does not reconnect after a close code in 4500–4999", () => {
    const { client, sockets, time, states } = setup();
    client.start();
    sockets.last().open();
    sockets.last().drop(4501, "token rejected");
    time.advance(600_000);
    expect(sockets.sockets).toHaveLength(1);
    expect(states.at(-1)).toBe("rejected");
    client.reconnectNow(); // e.g. the browser came online: still refused, still no retry
    expect(sockets.sockets).toHaveLength(1);
  });

  it("pings at half the server's idle timeout", async () => {
    const { client, sockets, time } = setup();
    client.start();
    sockets.last().open();
    sockets.last().receive(hello(10_000));
    await client.idle();
    time.advance(5_000);
    time.advance(5_000);
    expect(sockets.last().sent.filter((m) => (m as { type: string }).type === "ping")).toHaveLength(
      2,
    );
  });

  it("reconnectNow skips the backoff wait, and stop closes without reconnecting", () => {
    const { client, sockets, time } = setup();
    client.start();
    sockets.last().drop();
    client.reconnectNow();
    expect(sockets.sockets).toHaveLength(2);
    client.stop();
    expect(sockets.last().closed).toEqual({ code: 1000, reason: "client stopped" });
    time.advance(600_000);
    expect(sockets.sockets).toHaveLength(2);
  });
});
