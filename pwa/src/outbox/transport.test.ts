import { describe, expect, it } from "vitest";
import type { OpBatch } from "../generated/schemas";
import { httpTransport, parseRetryAfter } from "./transport";

const batch: OpBatch = {
  ops: [
    {
      op_id: "o1",
      client_id: "web-a",
      collection: "tasks",
      entity_id: "t1",
      kind: "delete",
      hlc: "001700000000000-0000-web-a",
    },
  ],
};

function fakeFetch(response: Response | Error) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fn = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    calls.push({ url: String(url), init: init ?? {} });
    if (response instanceof Error) throw response;
    return response;
  };
  return { calls, fetch: fn as typeof fetch };
}

describe("parseRetryAfter", () => {
  it("reads delta-seconds", () => {
    expect(parseRetryAfter("120", 0)).toBe(120_000);
    expect(parseRetryAfter(" 0 ", 0)).toBe(0);
  });

  it("reads an HTTP date relative to now, never negative", () => {
    const now = Date.parse("Tue, 24 Nov 2026 20:00:00 GMT");
    expect(parseRetryAfter("Tue, 24 Nov 2026 20:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Tue, 24 Nov 2026 19:00:00 GMT", now)).toBe(0);
  });

  it("answers null for a missing or unreadable header", () => {
    expect(parseRetryAfter(null, 0)).toBeNull();
    expect(parseRetryAfter("soon", 0)).toBeNull();
  });
});

describe("httpTransport", () => {
  it("posts the batch as JSON to {apiBase}/v1/ops with the bearer token", async () => {
    const body = {
      results: [{ op_id: "o1", status: "accepted" }],
      server_hlc: "001700000000001-0000-ingest",
    };
    const f = fakeFetch(new Response(JSON.stringify(body), { status: 202 }));
    const t = httpTransport({
      apiBase: () => "https://api.example/",
      token: () => "tok",
      fetch: f.fetch,
    });
    expect(await t.post(batch)).toEqual({ kind: "ok", result: body });
    expect(f.calls[0]?.url).toBe("https://api.example/v1/ops");
    expect(f.calls[0]?.init.method).toBe("POST");
    expect((f.calls[0]?.init.headers as Record<string, string>).authorization).toBe("Bearer tok");
    expect(JSON.parse(f.calls[0]?.init.body as string)).toEqual(batch);
  });

  it("returns the problem+json body and Retry-After of an error", async () => {
    const problem = {
      type: "https://syncpipe.dev/problems/rate-limited",
      title: "Too many requests",
      status: 429,
      detail: "slow down",
      code: "rate_limited",
    };
    const f = fakeFetch(
      new Response(JSON.stringify(problem), {
        status: 429,
        headers: { "content-type": "application/problem+json", "retry-after": "7" },
      }),
    );
    const t = httpTransport({ apiBase: () => "", token: () => null, fetch: f.fetch });
    expect(await t.post(batch)).toEqual({
      kind: "http_error",
      status: 429,
      problem,
      retryAfterMs: 7000,
    });
    expect(f.calls[0]?.url).toBe("/v1/ops");
  });

  it("reports a thrown fetch as a network error", async () => {
    const f = fakeFetch(new TypeError("Failed to fetch"));
    const t = httpTransport({ apiBase: () => "", token: () => "t", fetch: f.fetch });
    expect(await t.post(batch)).toEqual({ kind: "network", message: "Failed to fetch" });
  });

  it("treats a 2xx without an OpBatchResult as a retryable server error", async () => {
    const f = fakeFetch(new Response("<html>proxy</html>", { status: 200 }));
    const t = httpTransport({ apiBase: () => "", token: () => "t", fetch: f.fetch });
    expect(await t.post(batch)).toMatchObject({ kind: "http_error", status: 502 });
  });
});
