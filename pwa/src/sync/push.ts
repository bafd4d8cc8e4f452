/**
 * WebSocket client of the push service: connects to `{wsBase}/v1/ws?token=…`, subscribes
 * with the stored cursors, unpacks `batch` frames, hands every server message (in
 * order, one at a time) to a handler, keeps the connection alive with `ping`, and
 * reconnects with exponential backoff and full jitter — or after `retry_after_ms` when
 * the server sent a `disconnect_notice`. Close codes 4500–4999 mean "do not reconnect".
 *
 *     idle ──start──► connecting ──open──► open ──close 1000–4499──► waiting ──timer──► connecting
 *                                            └──close 4500–4999──► rejected      stop() ──► stopped
 */
import type { ClientMessage, ServerMessage } from "../generated/schemas";
import { fullJitterDelay, type BackoffPolicy } from "../outbox/backoff";
import type { Timers } from "../outbox/outbox";

/** The part of the WebSocket API this client uses (a fake one in tests). */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

export type PushState = "idle" | "connecting" | "open" | "waiting" | "rejected" | "stopped";

export interface PushHandler {
  /** One server message (batches are already unpacked); awaited before the next. */
  onMessage(message: Exclude<ServerMessage, { type: "batch" }>): Promise<void> | void;
  onState?(state: PushState, detail?: { code?: number; reason?: string; retryInMs?: number }): void;
}

export interface PushClientOptions {
  wsBase: () => string;
  token: () => string | null;
  /** This device's id (receipts and conflicts of its ops come only with it). */
  clientId?: string;
  socketFactory: SocketFactory;
  handler: PushHandler;
  /** Collections to subscribe to, each with the cursor to resume from. */
  subscriptions: () => Promise<{ collection: string; cursor: string | null }[]>;
  timers?: Timers;
  random?: () => number;
  backoff?: Pick<BackoffPolicy, "baseMs" | "capMs">;
  /** Ping at this interval, or half the server's idle timeout if that is shorter. */
  pingIntervalMs?: number;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Build the push URL: `{wsBase}/v1/ws?client_id=…&token=…`. The client id makes push
 * deliver this device's receipts and conflicts; browsers cannot set Authorization on a
 * WebSocket, so the token goes in the query.
 */
export function pushUrl(wsBase: string, token: string | null, clientId?: string): string {
  const params = new URLSearchParams();
  if (clientId) params.set("client_id", clientId);
  if (token) params.set("token", token);
  const query = params.toString();
  return `${wsBase.replace(/\/+$/, "")}/v1/ws${query ? `?${query}` : ""}`;
}

/** Parse a text frame into server messages, unpacking a batch (never nested). */
export function parseFrame(data: unknown): Exclude<ServerMessage, { type: "batch" }>[] {
  if (typeof data !== "string") throw new Error("push frames are JSON text");
  const msg = JSON.parse(data) as ServerMessage;
  if (typeof msg !== "object" || msg === null || typeof msg.type !== "string") {
    throw new Error("push frame without a type");
  }
  if (msg.type === "batch") {
    if (!Array.isArray(msg.messages)) throw new Error("batch without messages");
    return msg.messages.filter((m) => (m.type as string) !== "batch");
  }
  return [msg];
}

export class PushClient {
  private socket: SocketLike | null = null;
  private current: PushState = "idle";
  private attempt = 0;
  private reconnectTimer: unknown = null;
  private pingTimer: unknown = null;
  private noticeDelayMs: number | null = null;
  private chain: Promise<void> = Promise.resolve();
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly backoff: Pick<BackoffPolicy, "baseMs" | "capMs">;
  private pingIntervalMs: number;

  constructor(private readonly options: PushClientOptions) {
    this.timers = options.timers ?? realTimers;
    this.random = options.random ?? Math.random;
    this.backoff = options.backoff ?? { baseMs: 500, capMs: 30_000 };
    this.pingIntervalMs = options.pingIntervalMs ?? 25_000;
  }

  get state(): PushState {
    return this.current;
  }

  /** Resolves when every message received so far has been handled. */
  idle(): Promise<void> {
    return this.chain;
  }

  start(): void {
    if (this.current === "connecting" || this.current === "open") return;
    this.connect();
  }

  /** While waiting to reconnect: reconnect now (e.g. back online), skipping the backoff. */
  reconnectNow(): void {
    if (this.current !== "waiting") return; // open, connecting, stopped, or refused for good
    this.clearReconnect();
    this.connect();
  }

  stop(): void {
    this.setState("stopped");
    this.clearReconnect();
    this.clearPing();
    const s = this.socket;
    this.socket = null;
    if (s !== null) {
      s.onclose = null;
      s.close(1000, "client stopped");
    }
  }

  send(message: ClientMessage): void {
    this.socket?.send(JSON.stringify(message));
  }

  private setState(
    state: PushState,
    detail?: { code?: number; reason?: string; retryInMs?: number },
  ): void {
    this.current = state;
    this.options.handler.onState?.(state, detail);
  }

  private connect(): void {
    this.setState("connecting");
    let socket: SocketLike;
    try {
      socket = this.options.socketFactory(
        pushUrl(this.options.wsBase(), this.options.token(), this.options.clientId),
      );
    } catch {
      this.scheduleReconnect(1006, "could not open the socket");
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.setState("open");
      this.enqueue(async () => {
        for (const sub of await this.options.subscriptions()) {
          this.send({ type: "subscribe", collection: sub.collection, cursor: sub.cursor });
        }
      });
      this.armPing();
    };
    socket.onmessage = (ev) => {
      if (this.socket !== socket) return;
      let messages: Exclude<ServerMessage, { type: "batch" }>[];
      try {
        messages = parseFrame(ev.data);
      } catch {
        return; // a frame we cannot read is dropped; the server's next state supersedes it
      }
      for (const m of messages) {
        if (m.type === "hello") {
          this.attempt = 0;
          const idle = m.limits?.idle_timeout_ms;
          if (typeof idle === "number" && idle > 0) {
            this.pingIntervalMs = Math.min(
              this.pingIntervalMs,
              Math.max(1000, Math.floor(idle / 2)),
            );
            this.armPing();
          }
        }
        if (m.type === "disconnect_notice") this.noticeDelayMs = Math.max(0, m.retry_after_ms);
        this.enqueue(() => this.options.handler.onMessage(m));
      }
    };
    socket.onerror = () => {
      /* a close event always follows */
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.clearPing();
      if (ev.code >= 4500 && ev.code <= 4999) {
        this.setState("rejected", { code: ev.code, reason: ev.reason });
        return;
      }
      this.scheduleReconnect(ev.code, ev.reason);
    };
  }

  private scheduleReconnect(code: number, reason: string): void {
    if (this.current === "stopped") return;
    this.attempt += 1;
    const delay = this.noticeDelayMs ?? fullJitterDelay(this.attempt, this.backoff, this.random);
    this.noticeDelayMs = null;
    this.setState("waiting", { code, reason, retryInMs: delay });
    this.clearReconnect();
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  private enqueue(task: () => Promise<void> | void): void {
    this.chain = this.chain.then(task).catch((err: unknown) => {
      console.error("push message handling failed", err);
    });
  }

  private armPing(): void {
    this.clearPing();
    this.pingTimer = this.timers.setTimeout(() => {
      this.pingTimer = null;
      if (this.current !== "open") return;
      this.send({ type: "ping" });
      this.armPing();
    }, this.pingIntervalMs);
  }

  private clearPing(): void {
    if (this.pingTimer !== null) this.timers.clearTimeout(this.pingTimer);
    this.pingTimer = null;
  }

  private clearReconnect(): void {
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }
}
