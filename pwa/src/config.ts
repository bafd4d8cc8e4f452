/**
 * Runtime configuration. The backend serves `/config.js`, which sets
 * `window.SYNCPIPE_CONFIG = { apiBase, wsBase, token }`; anything missing falls back to
 * the page's own origin, and the token to one pasted into the dev token form (kept in
 * localStorage).
 */
export interface AppConfig {
  /** Base URL of ingest (`POST {apiBase}/v1/ops`); "" means this origin. */
  apiBase: string;
  /** Base URL of push (`{wsBase}/v1/ws`), ws:// or wss://. */
  wsBase: string;
  /** Bearer token (JWT), or null until one is configured. */
  token: string | null;
  /** Where the token came from: the server's config, or the dev token form. */
  tokenSource: "config" | "dev" | "none";
}

export const DEV_TOKEN_KEY = "syncpipe.dev_token";
/** The last `window.SYNCPIPE_CONFIG` seen, for starting offline without /config.js. */
export const SAVED_CONFIG_KEY = "syncpipe.config";

declare global {
  interface Window {
    SYNCPIPE_CONFIG?: Partial<Pick<AppConfig, "apiBase" | "wsBase" | "token">>;
  }
}

interface LocationLike {
  protocol: string;
  host: string;
  origin: string;
}

interface StorageLike {
  getItem(key: string): string | null;
}

export function loadConfig(
  raw: Window["SYNCPIPE_CONFIG"] | undefined,
  location: LocationLike,
  storage: StorageLike | null,
): AppConfig {
  const cfg = raw ?? {};
  const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
  const apiBase = typeof cfg.apiBase === "string" ? cfg.apiBase : location.origin;
  let wsBase =
    typeof cfg.wsBase === "string" && cfg.wsBase !== ""
      ? cfg.wsBase
      : `${wsScheme}//${location.host}`;
  if (wsBase.startsWith("http")) wsBase = wsBase.replace(/^http/, "ws");
  const configured = typeof cfg.token === "string" && cfg.token !== "" ? cfg.token : null;
  let dev: string | null = null;
  try {
    dev = storage?.getItem(DEV_TOKEN_KEY) ?? null;
  } catch {
    dev = null;
  }
  if (configured !== null) return { apiBase, wsBase, token: configured, tokenSource: "config" };
  if (dev) return { apiBase, wsBase, token: dev, tokenSource: "dev" };
  return { apiBase, wsBase, token: null, tokenSource: "none" };
}

type RawConfig = Window["SYNCPIPE_CONFIG"];

/**
 * The config to use: `/config.js`'s when it loaded (and remember it), else the last one
 * remembered — so a reload while offline still talks to the same backend with the same
 * token once the network is back.
 */
export function rememberedConfig(
  raw: RawConfig | undefined,
  storage: Pick<Storage, "getItem" | "setItem"> | null,
): RawConfig | undefined {
  try {
    if (raw !== undefined) {
      storage?.setItem(SAVED_CONFIG_KEY, JSON.stringify(raw));
      return raw;
    }
    const saved = storage?.getItem(SAVED_CONFIG_KEY);
    return saved ? (JSON.parse(saved) as RawConfig) : undefined;
  } catch {
    return raw; // storage full, blocked or holding junk: go without it
  }
}
