/** Waiting that a caller's AbortSignal can cut short. */

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Waits for `step` (its failure is the caller's to see), `ms`, or `signal`; rejects when `step`
 * does or the signal aborts.
 */
export async function waitFor(step: Promise<void>, ms: number, signal: AbortSignal): Promise<void> {
  const ctl = new AbortController();
  const both = AbortSignal.any([signal, ctl.signal]);
  try {
    await Promise.race([step, sleep(ms, both)]);
  } finally {
    ctl.abort();
  }
}
