import { describe, expect, it } from "vitest";
import { DEV_TOKEN_KEY, SAVED_CONFIG_KEY, loadConfig, rememberedConfig } from "./config";

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

describe("rememberedConfig", () => {
  function memoryStorage() {
    const m = new Map<string, string>();
    return {
      getItem: (k: string) => m.get(k) ?? null,
      setItem: (k: string, v: string) => void m.set(k, v),
      m,
    };
  }

  it("remembers /config.js and uses it when a later start has none (offline)", () => {
    const storage = memoryStorage();
    const cfg = { apiBase: "http://api", wsBase: "ws://push", token: "jwt" };
    expect(rememberedConfig(cfg, storage)).toEqual(cfg);
    expect(JSON.parse(storage.m.get(SAVED_CONFIG_KEY)!)).toEqual(cfg);
    expect(rememberedConfig(undefined, storage)).toEqual(cfg);
  });

  it("goes without when nothing was remembered or storage holds junk", () => {
    const storage = memoryStorage();
    expect(rememberedConfig(undefined, storage)).toBeUndefined();
    storage.m.set(SAVED_CONFIG_KEY, "{nope");
    expect(rememberedConfig(undefined, storage)).toBeUndefined();
    expect(rememberedConfig(undefined, null)).toBeUndefined();
  });
});
