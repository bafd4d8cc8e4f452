/**
 * Hybrid logical clock, behaving exactly like Python's `schemas/hlc.py`.
 *
 * A timestamp is the string `{wall_ms:015d}-{counter:04x}-{node}`; because wall_ms and
 * counter have a fixed width (and lowercase hex sorts after decimal digits), plain string
 * comparison orders timestamps like the tuple (wall_ms, counter, node): causal order.
 *
 *     now():      l' = max(l, pt)          c' = c + 1 if l' == l else 0
 *     receive(m): l' = max(l, m.l, pt)     c' = max(c, m.c) + 1  if l' == l == m.l
 *                                               c + 1            if l' == l
 *                                               m.c + 1          if l' == m.l
 *                                               0                otherwise
 *
 * A counter past 0xffff moves l forward by 1 ms and resets the counter.
 */

import { pyRepr } from "./pyrepr";

export const WALL_MS_MAX = 10 ** 15 - 1;
export const COUNTER_MAX = 0xffff;
const NODE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const WALL_RE = /^[0-9]{15}$/;
const COUNTER_RE = /^[0-9a-f]{4}$/;
const FORMAT = "'{wall_ms:015d}-{counter:04x}-{node}'";

export class HlcError extends Error {
  override name = "HlcError";
}

export interface HlcParts {
  readonly wallMs: number;
  readonly counter: number;
  readonly node: string;
}

function checkNode(node: unknown): string {
  if (typeof node !== "string" || !NODE_RE.test(node)) {
    throw new HlcError(
      `invalid hlc node ${pyRepr(node)}: use 1-64 of A-Z a-z 0-9 _ . : - (the client id)`,
    );
  }
  return node;
}

function checkParts(wallMs: number, counter: number, node: string): HlcParts {
  if (!Number.isSafeInteger(wallMs) || wallMs < 0 || wallMs > WALL_MS_MAX) {
    throw new HlcError(`invalid hlc wall_ms ${wallMs}: must be an integer 0..${WALL_MS_MAX}`);
  }
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw new HlcError(`invalid hlc counter ${counter}: must be a non-negative integer`);
  }
  if (counter > COUNTER_MAX) {
    throw new HlcError(
      `hlc counter overflow: ${counter} > 0xffff; advance wall_ms and reset the counter instead`,
    );
  }
  return { wallMs, counter, node: checkNode(node) };
}

/** Parse `{wall_ms:015d}-{counter:04x}-{node}`; throws {@link HlcError} with the reason. */
export function parseHlc(s: unknown): HlcParts {
  if (typeof s !== "string") {
    throw new HlcError(`invalid hlc ${pyRepr(s)}: expected a string ${FORMAT}`);
  }
  const first = s.indexOf("-");
  const second = first < 0 ? -1 : s.indexOf("-", first + 1);
  if (first < 0 || second < 0) {
    throw new HlcError(`invalid hlc ${pyRepr(s)}: expected ${FORMAT}`);
  }
  const wall = s.slice(0, first);
  const counter = s.slice(first + 1, second);
  const node = s.slice(second + 1);
  if (!WALL_RE.test(wall)) {
    throw new HlcError(
      `invalid hlc ${pyRepr(s)}: wall_ms must be exactly 15 decimal digits, got ${pyRepr(wall)}; expected ${FORMAT}`,
    );
  }
  if (!COUNTER_RE.test(counter)) {
    throw new HlcError(
      `invalid hlc ${pyRepr(s)}: counter must be exactly 4 lowercase hex digits, got ${pyRepr(counter)}; expected ${FORMAT}`,
    );
  }
  if (!NODE_RE.test(node)) {
    throw new HlcError(
      `invalid hlc ${pyRepr(s)}: node must be 1-64 of A-Z a-z 0-9 _ . : -, got ${pyRepr(node)}; expected ${FORMAT}`,
    );
  }
  return checkParts(Number(wall), parseInt(counter, 16), node);
}

/** The canonical string form of validated parts. */
export function formatHlc(wallMs: number, counter: number, node: string): string {
  const p = checkParts(wallMs, counter, node);
  return `${String(p.wallMs).padStart(15, "0")}-${p.counter.toString(16).padStart(4, "0")}-${p.node}`;
}

/** True iff `s` is a well-formed HLC string. */
export function isHlc(s: unknown): s is string {
  try {
    parseHlc(s);
    return true;
  } catch {
    return false;
  }
}

/** -1, 0 or 1 as a is before, equal to or after b (both validated). */
export function compareHlc(a: string, b: string): -1 | 0 | 1 {
  const pa = parseHlc(a);
  const pb = parseHlc(b);
  if (pa.wallMs !== pb.wallMs) return pa.wallMs < pb.wallMs ? -1 : 1;
  if (pa.counter !== pb.counter) return pa.counter < pb.counter ? -1 : 1;
  if (pa.node === pb.node) return 0;
  return pa.node < pb.node ? -1 : 1;
}

/** The greatest of the given HLC strings. */
export function maxHlc(first: string, ...rest: string[]): string {
  return rest.reduce((best, h) => (compareHlc(h, best) > 0 ? h : best), first);
}

export type WallClock = () => number;

/** An HLC for one node (this device's client id). Wall clock injectable for tests. */
export class HlcClock {
  readonly node: string;
  private wall = 0;
  private counter = 0;
  private lastIssued: string | null = null;

  constructor(
    node: string,
    private readonly wallClock: WallClock = () => Date.now(),
  ) {
    this.node = checkNode(node);
  }

  /** The latest timestamp issued by now() or receive() (null before any). */
  get last(): string | null {
    return this.lastIssued;
  }

  private readWall(): number {
    return Math.max(0, Math.trunc(this.wallClock()));
  }

  private issue(wall: number, counter: number): string {
    if (counter > COUNTER_MAX) {
      wall += 1;
      counter = 0;
    }
    const hlc = formatHlc(wall, counter, this.node);
    this.wall = wall;
    this.counter = counter;
    this.lastIssued = hlc;
    return hlc;
  }

  private nextLocal(): [number, number] {
    const pt = this.readWall();
    if (pt > this.wall) return [pt, 0];
    return [this.wall, this.counter + 1];
  }

  /** What now() would return at this instant, without advancing. */
  peek(): string {
    let [wall, counter] = this.nextLocal();
    if (counter > COUNTER_MAX) {
      wall += 1;
      counter = 0;
    }
    return formatHlc(wall, counter, this.node);
  }

  /** A new timestamp, greater than every earlier one, even if the wall clock went back. */
  now(): string {
    const [wall, counter] = this.nextLocal();
    return this.issue(wall, counter);
  }

  /** Merge a remote timestamp; the result is greater than it and every earlier one. */
  receive(remote: string): string {
    const m = parseHlc(remote);
    const pt = this.readWall();
    const wall = Math.max(this.wall, m.wallMs, pt);
    let counter: number;
    if (wall === this.wall && wall === m.wallMs) counter = Math.max(this.counter, m.counter) + 1;
    else if (wall === this.wall) counter = this.counter + 1;
    else if (wall === m.wallMs) counter = m.counter + 1;
    else counter = 0;
    return this.issue(wall, counter);
  }
}
