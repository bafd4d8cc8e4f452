import { describe, expect, it } from "vitest";
import {
  COUNTER_MAX,
  HlcClock,
  HlcError,
  compareHlc,
  formatHlc,
  isHlc,
  maxHlc,
  parseHlc,
} from "./hlc";

function fakeClock(start: number): { now: () => number; set: (ms: number) => void } {
  let t = start;
  return { now: () => t, set: (ms: number) => (t = ms) };
}

describe("hlc strings", () => {
  it("formats wall_ms as 15 digits and the counter as 4 lowercase hex digits", () => {
    expect(formatHlc(1_700_000_000_123, 2, "phone-7")).toBe("001700000000123-0002-phone-7");
    expect(formatHlc(0, 0xabcd, "n")).toBe("000000000000000-abcd-n");
  });

  it("parses what it formats, keeping dashes inside the node", () => {
    expect(parseHlc("001700000000123-00ff-web-a-b")).toEqual({
      wallMs: 1_700_000_000_123,
      counter: 255,
      node: "web-a-b",
    });
  });

  it.each([
    ["not a string", 42],
    ["no separators", "001700000000123"],
    ["a short wall_ms", "1700000000123-0000-a"],
    ["uppercase hex in the counter", "001700000000123-00FF-a"],
    ["a 5-digit counter", "001700000000123-00000-a"],
    ["an empty node", "001700000000123-0000-"],
    ["a node with a space", "001700000000123-0000-a b"],
    ["a node longer than 64 characters", `001700000000123-0000-${"x".repeat(65)}`],
  ])("rejects %s with an HlcError naming the expected format", (_name, value) => {
    expect(() => parseHlc(value)).toThrow(HlcError);
    expect(() => parseHlc(value)).toThrow(/wall_ms:015d/);
    expect(isHlc(value)).toBe(false);
  });

  it("refuses to format a counter above 0xffff", () => {
    expect(() => formatHlc(1, COUNTER_MAX + 1, "a")).toThrow(/overflow/);
  });

  it("orders strings lexicographically exactly like (wall_ms, counter, node)", () => {
    const values = [
      formatHlc(10, 0xa, "b"),
      formatHlc(10, 9, "z"),
      formatHlc(9, 0xffff, "z"),
      formatHlc(10, 0xa, "a"),
      formatHlc(11, 0, "a"),
    ];
    const byString = [...values].sort();
    const byTuple = [...values].sort(compareHlc);
    expect(byTuple).toEqual(byString);
    expect(maxHlc(values[0]!, ...values.slice(1))).toBe(formatHlc(11, 0, "a"));
  });
});

describe("HlcClock", () => {
  it("uses the wall clock and counts up within one millisecond", () => {
    const wall = fakeClock(1000);
    const clock = new HlcClock("a", wall.now);
    expect(clock.now()).toBe(formatHlc(1000, 0, "a"));
    expect(clock.now()).toBe(formatHlc(1000, 1, "a"));
    wall.set(1005);
    expect(clock.now()).toBe(formatHlc(1005, 0, "a"));
    expect(clock.last).toBe(formatHlc(1005, 0, "a"));
  });

  it("stays monotonic when the wall clock goes backwards", () => {
    const wall = fakeClock(5000);
    const clock = new HlcClock("a", wall.now);
    const first = clock.now();
    wall.set(1000);
    const second = clock.now();
    expect(second > first).toBe(true);
    expect(second).toBe(formatHlc(5000, 1, "a"));
  });

  it("advances wall_ms by one and resets the counter when the counter overflows", () => {
    const clock = new HlcClock("a", () => 7);
    clock.receive(formatHlc(7, COUNTER_MAX - 1, "b"));
    expect(clock.last).toBe(formatHlc(7, COUNTER_MAX, "a"));
    expect(clock.peek()).toBe(formatHlc(8, 0, "a"));
    expect(clock.now()).toBe(formatHlc(8, 0, "a"));
  });

  it("receive() jumps ahead of a remote timestamp from the future", () => {
    const clock = new HlcClock("a", () => 1000);
    expect(clock.receive(formatHlc(9000, 3, "server"))).toBe(formatHlc(9000, 4, "a"));
    expect(clock.now()).toBe(formatHlc(9000, 5, "a"));
  });

  it("receive() takes the larger counter plus one when all three walls are equal", () => {
    const clock = new HlcClock("a", () => 1000);
    clock.now(); // (1000, 0)
    clock.now(); // (1000, 1)
    expect(clock.receive(formatHlc(1000, 7, "b"))).toBe(formatHlc(1000, 8, "a"));
    expect(clock.receive(formatHlc(1000, 2, "b"))).toBe(formatHlc(1000, 9, "a"));
  });

  it("receive() keeps its own wall when the remote is older and resets to 0 on a fresh wall", () => {
    const wall = fakeClock(2000);
    const clock = new HlcClock("a", wall.now);
    clock.now();
    expect(clock.receive(formatHlc(10, 5, "b"))).toBe(formatHlc(2000, 1, "a"));
    wall.set(3000);
    expect(clock.receive(formatHlc(10, 5, "b"))).toBe(formatHlc(3000, 0, "a"));
  });

  it("receive() rejects a malformed remote timestamp without advancing", () => {
    const clock = new HlcClock("a", () => 1000);
    const before = clock.now();
    expect(() => clock.receive("garbage")).toThrow(HlcError);
    expect(clock.last).toBe(before);
  });

  it("rejects a node that is not a valid client id", () => {
    expect(() => new HlcClock("bad node")).toThrow(HlcError);
  });

  it("issues strictly increasing timestamps under random wall clocks and receives", () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const clock = new HlcClock("a", () => Math.floor(rand() * 100));
    let prev = "";
    for (let i = 0; i < 2000; i++) {
      const next =
        rand() < 0.3
          ? clock.receive(formatHlc(Math.floor(rand() * 120), Math.floor(rand() * 10), "b"))
          : clock.now();
      expect(next > prev).toBe(true);
      prev = next;
    }
  });
});
