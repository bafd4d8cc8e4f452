import { describe, expect, it } from "vitest";
import { DEV_TOKEN_KEY, loadConfig } from "./config";

const page = { protocol: "https:", host: "app.example:8443", origin: "https://app.example:8443" };
const storage = (token: string | null) => ({
  getItem: (k: string) => (k === DEV_TOKEN_KEY ? token : null),
});

describe("loadConfig", () => {
  it("defaults to the page's origin for ingest and push", () => {
    expect(loadConfig(undefined, page, null)).toEqual({
      apiBase: "https://app.example:8443",
      wsBase: "wss://app.example:8443",
      token: null,
      tokenSource: "none",
    });
    expect(loadConfig({}, { ...page, protocol: "http:" }, null).wsBase).toBe(
      "ws://app.example:8443",
    );
  });

  it("takes URLs and token from window.SYNCPIPE_CONFIG, turning an http push URL into ws", () => {
    const cfg = loadConfig(
      { apiBase: "http://127.0.0.1:8000", wsBase: "http://127.0.0.1:8001", token: "jwt" },
      page,
      storage("dev"),
    );
    expect(cfg).toEqual({
      apiBase: "http://127.0.0.1:8000",
      wsBase: "ws://127.0.0.1:8001",
      token: "jwt",
      tokenSource: "config",
    });
  });

  it("falls back to the dev token saved in localStorage", () => {
    expect(loadConfig({ token: "" }, page, storage("dev-jwt"))).toMatchObject({
      token: "dev-jwt",
      tokenSource: "dev",
    });
  });
});
