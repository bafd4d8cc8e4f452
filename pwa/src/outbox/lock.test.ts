import { describe, expect, it } from "vitest";
import { deferred } from "../testing/fakes";
import { localLock, webLock } from "./lock";

describe("locks", () => {
  it("localLock runs holders of one name one after another", async () => {
    const lock = localLock();
    const gate = deferred<void>();
    const order: string[] = [];
    const a = lock("x", async () => {
      order.push("a start");
      await gate.promise;
      order.push("a end");
    });
    const b = lock("x", async () => {
      order.push("b");
    });
    await new Promise((r) => setTimeout(r, 0));
    expect(order).toEqual(["a start"]);
    gate.resolve();
    await Promise.all([a, b]);
    expect(order).toEqual(["a start", "a end", "b"]);
  });

  it("localLock releases the lock when a holder throws", async () => {
    const lock = localLock();
    await expect(lock("x", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await lock("x", async () => 42)).toBe(42);
  });

  it("webLock uses navigator.locks when the browser has it", async () => {
    const names: string[] = [];
    const nav = {
      locks: { request: async <T>(name: string, fn: () => Promise<T>) => (names.push(name), fn()) },
    };
    expect(await webLock(nav)("syncpipe-outbox", async () => "ok")).toBe("ok");
    expect(names).toEqual(["syncpipe-outbox"]);
  });

  it("webLock falls back to a local lock without the Web Locks API", async () => {
    expect(await webLock({})("x", async () => "fallback")).toBe("fallback");
    expect(await webLock(undefined)("x", async () => "none")).toBe("none");
  });
});
