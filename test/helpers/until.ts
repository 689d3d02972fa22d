/**
 * Wait for a condition no event signals: ask `f` again and again (a few ms apart, so the thing under test gets the
 * CPU) until it answers something other than undefined or false, and resolve with that answer.
 *
 * The guard only keeps a broken test from hanging the suite. It is minutes, never a performance bound: on a loaded
 * shared machine a condition may take long to come true, and that is not a failure of the behaviour under test.
 */
export const UNTIL_GUARD_MS = 120_000;

export async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, everyMs = 5): Promise<T> {
  const guard = performance.now() + UNTIL_GUARD_MS;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > guard) throw new Error(`still waiting for ${what} after ${UNTIL_GUARD_MS / 1000} s: the test is stuck`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
