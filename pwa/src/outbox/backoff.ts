/** Exponential backoff with full jitter, and a seedable RNG for tests. */

export interface BackoffPolicy {
  /** Delay ceiling of the first retry, ms. */
  baseMs: number;
  /** Largest ceiling, ms. */
  capMs: number;
  /** Wire attempts per op; after the last one fails the op is `failed`. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 1_000, capMs: 60_000, maxAttempts: 8 };

/** The ceiling after `attempt` failed attempts (1-based): min(cap, base * 2^(attempt-1)). */
export function backoffCeiling(
  attempt: number,
  policy: Pick<BackoffPolicy, "baseMs" | "capMs">,
): number {
  const exp = Math.min(Math.max(attempt - 1, 0), 52);
  return Math.min(policy.capMs, policy.baseMs * 2 ** exp);
}

/** Full jitter (AWS architecture blog): uniform in [0, ceiling). */
export function fullJitterDelay(
  attempt: number,
  policy: Pick<BackoffPolicy, "baseMs" | "capMs">,
  random: () => number,
): number {
  return Math.floor(random() * backoffCeiling(attempt, policy));
}

/** mulberry32: a tiny deterministic PRNG in [0, 1) for tests and reproducible runs. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
