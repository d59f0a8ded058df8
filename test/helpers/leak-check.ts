import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';

/** Handle kinds that a closed component must not leave behind. */
const watched = new Set(['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'PipeWrap', 'UDPWrap', 'Immediate']);

function count(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) {
    if (watched.has(kind)) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return counts;
}

/**
 * Takes a snapshot of the live sockets and timers; `check()` later fails the test when there are more,
 * the analogue of goleak in TiCDC's tests. Sockets close asynchronously, so it retries for a moment.
 */
export function leakCheck(): { check(): Promise<void> } {
  const before = count();
  return {
    async check() {
      let leaked: string[] = [];
      for (let attempt = 0; attempt < 40; attempt++) {
        const after = count();
        leaked = [...after].filter(([kind, n]) => n > (before.get(kind) ?? 0)).map(([kind, n]) => `${kind}: ${before.get(kind) ?? 0} → ${n}`);
        if (leaked.length === 0) return;
        await delay(50); // the timer has fired, so it is not counted by the next snapshot
      }
      assert.deepEqual(leaked, [], `handles left open: ${leaked.join(', ')}`);
    },
  };
}
