/**
 * HTTP transport of the outbox: `POST {apiBase}/v1/ops` with a bearer token.
 *
 * It only translates HTTP into a {@link PostResult}; what to retry is the outbox's policy.
 * 202 → `OpBatchResult`; an error → status, RFC 9457 problem+json (when the body is one)
 * and `Retry-After` (delta-seconds or an HTTP date) in ms; no response → `network`.
 */
import type { OpBatch, OpBatchResult, OpResult } from "../generated/schemas";

/** RFC 9457 problem details as ingest sends them. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  /** ingest: true when sending the same request later may succeed. */
  retriable?: boolean;
  /** ingest: seconds to wait (also sent as the Retry-After header). */
  retry_after_s?: number | null;
  [k: string]: unknown;
}

export type PostResult =
  | { kind: "ok"; result: OpBatchResult }
  | { kind: "http_error"; status: number; problem: Problem | null; retryAfterMs: number | null }
  | { kind: "network"; message: string };

export interface OpsTransport {
  post(batch: OpBatch): Promise<PostResult>;
}

/** Parse a Retry-After header: delta-seconds or an HTTP date; ms from `nowMs`, or null. */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - nowMs);
}

function isOpResult(v: unknown): v is OpResult {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.op_id === "string" &&
    (r.status === "accepted" || r.status === "duplicate" || r.status === "rejected")
  );
}

function isOpBatchResult(v: unknown): v is OpBatchResult {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    Array.isArray(r.results) && r.results.every(isOpResult) && typeof r.server_hlc === "string"
  );
}

export interface HttpTransportOptions {
  /** e.g. `https://sync.example.com` or `` for same origin. */
  apiBase: () => string;
  /** The bearer token (read per request so a new token applies at once). */
  token: () => string | null;
  fetch?: typeof fetch;
  now?: () => number;
  /** Give up on a request after this long (a hung request would hold the drain lock). */
  timeoutMs?: number;
}

export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}${path}`;
}

export function httpTransport(options: HttpTransportOptions): OpsTransport {
  const doFetch = options.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
  const now = options.now ?? Date.now;
  return {
    async post(batch: OpBatch): Promise<PostResult> {
      const headers: Record<string, string> = {
        "content-type": "application/json",
        accept: "application/json, application/problem+json",
      };
      const token = options.token();
      if (token) headers.authorization = `Bearer ${token}`;
      let response: Response;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), options.timeoutMs ?? 30_000);
      try {
        response = await doFetch(joinUrl(options.apiBase(), "/v1/ops"), {
          method: "POST",
          headers,
          body: JSON.stringify(batch),
          signal: abort.signal,
        });
      } catch (err) {
        return { kind: "network", message: err instanceof Error ? err.message : String(err) };
      } finally {
        clearTimeout(timer);
      }
      let body: unknown = null;
      try {
        body = await response.json();
      } catch {
        body = null;
      }
      if (response.status >= 200 && response.status < 300) {
        if (isOpBatchResult(body)) return { kind: "ok", result: body };
        return {
          kind: "http_error",
          status: 502,
          problem: {
            title: "malformed response",
            detail: "POST /v1/ops answered without an OpBatchResult",
            code: "bad_response",
          },
          retryAfterMs: null,
        };
      }
      const problem = typeof body === "object" && body !== null ? (body as Problem) : null;
      return {
        kind: "http_error",
        status: response.status,
        problem,
        retryAfterMs: parseRetryAfter(response.headers.get("retry-after"), now()),
      };
    },
  };
}
