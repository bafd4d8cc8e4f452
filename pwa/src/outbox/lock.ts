/**
 * Cross-tab mutual exclusion: only one tab drains the outbox at a time. Uses the Web
 * Locks API (`navigator.locks.request`); where it is missing, falls back to a lock that
 * serializes callers within this tab only.
 */
export type LockFn = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/** A lock that serializes callers of the same name within this JavaScript realm. */
export function localLock(): LockFn {
  const tails = new Map<string, Promise<unknown>>();
  return <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const previous = tails.get(name) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    tails.set(name, tail);
    void tail.then(() => {
      if (tails.get(name) === tail) tails.delete(name);
    });
    return run;
  };
}

/** The Web Locks API when the browser has it, else {@link localLock}. */
export function webLock(
  nav: { locks?: LockManagerLike } | undefined = globalThis.navigator as never,
): LockFn {
  const locks = nav?.locks;
  if (locks !== undefined && typeof locks.request === "function") {
    return <T>(name: string, fn: () => Promise<T>) => locks.request(name, fn);
  }
  return localLock();
}
