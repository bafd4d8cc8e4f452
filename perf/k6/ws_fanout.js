// Push fanout under load: N WebSocket subscribers on one collection while ops are posted
// through ingest over HTTP (ingest -> ops topic -> streams -> entities topic -> push), so the
// whole pipeline is measured. The run fails (k6 exit code 99) when a threshold is crossed:
//
//   * push_received_bytes_per_s: per connection, (bytes received - BURST_BYTES) / seconds
//     connected must stay <= MAX_BPS, push's token-bucket ceiling (it admits at most
//     burst + rate * t bytes in t seconds);
//   * push_e2e_ms p95/p99: ingest's server-stamped received_at_ms -> receipt here, per
//     entity message;
//   * push_snapshots: every subscriber connected and got its snapshot;
//   * checks: ops accepted by ingest, no WebSocket errors.
//
// Run against a running system (`just dev` / `syncpipe dev`; `just k6` mints the token):
//
//   TOKEN=$(uv run syncpipe token --tenant k6 --user k6) uv run k6 run perf/k6/ws_fanout.js
//
// Environment (defaults in brackets; the defaults pass on a shared 2-core machine running
// the whole stack and k6 itself, with headroom for noise):
//   PUSH_URL [ws://127.0.0.1:8081/v1/ws]   INGEST_URL [http://127.0.0.1:8080]
//   TOKEN (required: a dev JWT)            COLLECTION [k6_fanout]
//   SUBSCRIBERS [100]  DURATION_S [30]     OPS_PER_S [20]    ENTITIES [500]
//   MAX_BPS / BURST_BYTES: push's SYNCPIPE_PUSH_MAX_BPS / _BURST_BYTES [262144 / 131072]
//   E2E_P95_MS [250]  E2E_P99_MS [500]     (whole pipeline: ingest -> log -> streams -> push)
//
// To see the byte ceiling hold under throttling, start push with a small budget (e.g.
// SYNCPIPE_PUSH_MAX_BPS=4096 SYNCPIPE_PUSH_BURST_BYTES=8192) and pass the same MAX_BPS /
// BURST_BYTES here; conflation then keeps latency bounded by the budget, not the rate, so
// raise E2E_P95_MS / E2E_P99_MS accordingly.
//
// Metrics: push_received_bytes_per_s (per connection), push_e2e_ms (per entity message),
// push_messages (entity messages received), push_snapshots (subscribers answered).

import http from "k6/http";
import { check } from "k6";
import { Counter, Trend } from "k6/metrics";
import { WebSocket } from "k6/experimental/websockets";
import { setTimeout } from "k6/timers";

const PUSH_URL = __ENV.PUSH_URL || "ws://127.0.0.1:8081/v1/ws";
const INGEST_URL = __ENV.INGEST_URL || "http://127.0.0.1:8080";
const TOKEN = __ENV.TOKEN || "";
const COLLECTION = __ENV.COLLECTION || "k6_fanout";
const SUBSCRIBERS = Number(__ENV.SUBSCRIBERS || 100);
const DURATION_S = Number(__ENV.DURATION_S || 30);
const OPS_PER_S = Number(__ENV.OPS_PER_S || 20);
const ENTITIES = Number(__ENV.ENTITIES || 500);
const MAX_BPS = Number(__ENV.MAX_BPS || 262144);
const BURST_BYTES = Number(__ENV.BURST_BYTES || 131072);
const E2E_P95_MS = Number(__ENV.E2E_P95_MS || 250);
const E2E_P99_MS = Number(__ENV.E2E_P99_MS || 500);

const receivedBps = new Trend("push_received_bytes_per_s");
const e2e = new Trend("push_e2e_ms", true);
const messages = new Counter("push_messages");
const snapshots = new Counter("push_snapshots");

export const options = {
  scenarios: {
    subscribers: {
      executor: "per-vu-iterations",
      exec: "subscriber",
      vus: SUBSCRIBERS,
      iterations: 1,
      maxDuration: `${DURATION_S + 30}s`,
    },
    writers: {
      executor: "constant-arrival-rate",
      exec: "writer",
      rate: OPS_PER_S,
      timeUnit: "1s",
      duration: `${DURATION_S}s`,
      startTime: "3s", // let the subscribers connect and take their snapshots first
      preAllocatedVUs: 20,
      maxVUs: 200,
    },
  },
  thresholds: {
    // the token bucket's ceiling: the burst is subtracted before dividing by the time
    push_received_bytes_per_s: [{ threshold: `max<=${MAX_BPS}`, abortOnFail: false }],
    push_e2e_ms: [`p(95)<${E2E_P95_MS}`, `p(99)<${E2E_P99_MS}`],
    push_messages: ["count>0"],
    push_snapshots: [`count>=${SUBSCRIBERS}`],
    checks: ["rate>0.99"],
  },
};

if (!TOKEN) {
  throw new Error("set TOKEN to a dev JWT: TOKEN=$(uv run syncpipe token --tenant k6 --user k6)");
}

function countEntities(msg, now) {
  if (msg.type === "batch") {
    for (const m of msg.messages) countEntities(m, now);
  } else if (msg.type === "entity") {
    messages.add(1);
    e2e.add(now - msg.state.received_at_ms);
  } else if (msg.type === "snapshot") {
    snapshots.add(1);
  }
}

export function subscriber() {
  const url = `${PUSH_URL}?token=${encodeURIComponent(TOKEN)}&client_id=k6-sub-${__VU}`;
  const ws = new WebSocket(url);
  let bytes = 0;
  let opened = 0;
  ws.onopen = () => {
    opened = Date.now();
    ws.send(JSON.stringify({ type: "subscribe", collection: COLLECTION }));
  };
  ws.onmessage = (event) => {
    const now = Date.now();
    bytes += event.data.length; // JSON is ASCII here: characters == bytes
    countEntities(JSON.parse(event.data), now);
  };
  ws.onerror = (e) => {
    check(e, { "websocket error": () => false });
  };
  ws.onclose = () => {
    if (opened) {
      const seconds = (Date.now() - opened) / 1000;
      receivedBps.add(Math.max(0, bytes - BURST_BYTES) / seconds);
    }
  };
  // keep the connection alive past the idle timeout while the writers run
  const ping = () => {
    if (ws.readyState === 1) {
      ws.send('{"type":"ping"}');
      setTimeout(ping, 10000);
    }
  };
  setTimeout(ping, 10000);
  setTimeout(() => ws.close(), (DURATION_S + 8) * 1000);
}

let seq = 0;

export function writer() {
  seq += 1;
  const now = Date.now();
  const client = `k6-w-${__VU}`;
  const op = {
    op_id: `k6-${__VU}-${seq}-${now}`,
    client_id: client,
    collection: COLLECTION,
    entity_id: `e${Math.floor(Math.random() * ENTITIES)}`,
    kind: "upsert",
    fields: { title: `from ${client} #${seq}`, done: seq % 2 === 0 },
    hlc: `${String(now).padStart(15, "0")}-0000-${client}`,
  };
  const res = http.post(`${INGEST_URL}/v1/ops`, JSON.stringify({ ops: [op] }), {
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}` },
  });
  check(res, { "ops accepted": (r) => r.status === 200 || r.status === 202 });
}
