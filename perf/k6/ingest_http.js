// Ingest over HTTP: batches of upserts posted to POST /v1/ops at a constant arrival rate;
// fails when requests fail, ops are not accepted, or request latency is too high.
//
// Run against a running system (`syncpipe dev`, or the compose stack):
//
//   TOKEN=$(uv run syncpipe token --tenant k6 --user k6) \
//   uv run k6 run perf/k6/ingest_http.js
//
// Environment (defaults in brackets):
//   INGEST_URL [http://127.0.0.1:8080]   TOKEN (required: a dev JWT)
//   RATE [100] requests/s                BATCH [20] ops per request (RATE x BATCH ops/s)
//   DURATION_S [30]                      COLLECTION [k6_ingest]   ENTITIES [1000]
//   P95_MS [100]  P99_MS [250]           request latency thresholds (acks=all: the ops are
//                                        durably in the log when the answer comes)
//
// Each VU posts as its own client id, so ingest's per-client rate limit
// (SYNCPIPE_INGEST_RATE_LIMIT_OPS_PER_S, 1,000 ops/s by default) applies per VU; a 429
// counts as a failed request. Metrics: ops_accepted / ops_not_accepted (counts),
// http_req_duration (request latency), checks (every op accepted).

import http from "k6/http";
import { check } from "k6";
import { Counter } from "k6/metrics";

const INGEST_URL = __ENV.INGEST_URL || "http://127.0.0.1:8080";
const TOKEN = __ENV.TOKEN || "";
const RATE = Number(__ENV.RATE || 100);
const BATCH = Number(__ENV.BATCH || 20);
const DURATION_S = Number(__ENV.DURATION_S || 30);
const COLLECTION = __ENV.COLLECTION || "k6_ingest";
const ENTITIES = Number(__ENV.ENTITIES || 1000);
const P95_MS = Number(__ENV.P95_MS || 100);
const P99_MS = Number(__ENV.P99_MS || 250);

const accepted = new Counter("ops_accepted");
const notAccepted = new Counter("ops_not_accepted");

export const options = {
  scenarios: {
    ingest: {
      executor: "constant-arrival-rate",
      exec: "post",
      rate: RATE,
      timeUnit: "1s",
      duration: `${DURATION_S}s`,
      preAllocatedVUs: Math.max(2, Math.ceil(RATE / 20)),
      maxVUs: Math.max(10, RATE),
    },
  },
  thresholds: {
    http_req_failed: ["rate<0.01"],
    http_req_duration: [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
    checks: ["rate>0.99"],
    ops_accepted: ["count>0"],
    ops_not_accepted: ["count<1"],
  },
};

if (!TOKEN) {
  throw new Error("set TOKEN to a dev JWT: TOKEN=$(uv run syncpipe token --tenant k6 --user k6)");
}

const HEADERS = { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}` };
const RUN = Date.now().toString(16);
let seq = 0;
let lastWall = 0;
let counter = 0;

// {wall_ms:015d}-{counter:04x}-{node}: strictly increasing per VU
function hlc(node) {
  const now = Date.now();
  if (now > lastWall) {
    lastWall = now;
    counter = 0;
  } else {
    counter += 1;
  }
  return `${String(lastWall).padStart(15, "0")}-${counter.toString(16).padStart(4, "0")}-${node}`;
}

export function post() {
  const client = `k6-${RUN}-${__VU}`;
  const ops = [];
  for (let i = 0; i < BATCH; i++) {
    seq += 1;
    ops.push({
      op_id: `${client}-${seq}`,
      client_id: client,
      collection: COLLECTION,
      entity_id: `e${(seq * 7919 + __VU) % ENTITIES}`,
      kind: "upsert",
      fields: { title: `from ${client} #${seq}`, done: seq % 2 === 0 },
      hlc: hlc(client),
    });
  }
  const res = http.post(`${INGEST_URL}/v1/ops`, JSON.stringify({ ops }), { headers: HEADERS });
  let ok = 0;
  if (res.status === 202) {
    for (const r of res.json("results")) {
      if (r.status === "accepted") ok += 1;
    }
  }
  accepted.add(ok);
  notAccepted.add(BATCH - ok);
  check(res, {
    "status 202": (r) => r.status === 202,
    "every op accepted": () => ok === BATCH,
  });
}
