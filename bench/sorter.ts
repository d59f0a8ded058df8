/**
 * Sorter throughput: N events pushed through one TableSorter with a small memory quota, so most of them
 * spill to LevelDB and come back, with the reader running concurrently.
 * usage: node --import tsx bench/sorter.ts [events=1000000] [payloadBytes=100] [quotaMiB=16] [mode=backlog|stream]
 * backlog: resolved-ts only moves at the end (a stalled sink: everything beyond the quota spills);
 * stream: resolved-ts moves every 10k events and the reader keeps up.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryQuota, SpillStore, TableSorter } from '../src/core/pipeline/sorter/index.js';

const args = process.argv.slice(2);
const [events = 1_000_000, payloadBytes = 100, quotaMiB = 16] = args.slice(0, 3).map(Number);
const mode = args[3] ?? 'backlog';
const store = await SpillStore.open(join(mkdtempSync(join(tmpdir(), 'tidemark-bench-sorter-')), 'store'));
const quota = new MemoryQuota(quotaMiB * 1024 * 1024);
const sorter = new TableSorter(1, quota, store);
const payload = Buffer.alloc(payloadBytes, 0x61);
let peakRss = 0;
let peakAnon = 0;
/** RSS less file-backed pages (LevelDB maps its table files; those pages are page cache, not our memory). */
function rssAnon(): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  peakAnon = Math.max(peakAnon, rssAnon());
}, 50);

const started = process.hrtime.bigint();
let read = 0;
const reader = (async () => {
  const signal = new AbortController().signal;
  while (read < events) if ((await sorter.next(signal)).kind === 'event') read++;
})();
for (let i = 0; i < events; i++) {
  const ts = BigInt(1 + Math.floor(i / 4));
  // each row its own buffer, as the puller makes them (one copy out of the rows event)
  const row = Buffer.allocUnsafe(payloadBytes);
  payload.copy(row);
  sorter.add({ ts, seq: i % 4, payload: row });
  if (i % 10_000 === 9_999) {
    if (mode === 'stream') sorter.advanceResolved(ts - 1n);
    await sorter.writable(); // the puller's backpressure: wait while spill writes are behind
    await new Promise((resolve) => setImmediate(resolve)); // yield, as a puller does between socket reads
  }
}
sorter.advanceResolved(BigInt(events));
await reader;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage().rss);
const spilled = sorter.stats.spilledEvents;
await sorter.close();
await store.destroy();
const result = {
  bench: 'sorter',
  mode,
  events,
  payloadBytes,
  quotaMiB,
  seconds: Number(seconds.toFixed(2)),
  eventsPerSecond: Math.round(events / seconds),
  spilledEvents: spilled,
  peakQuotaBytes: quota.peak,
  peakRssMiB: Math.round(peakRss / 1048576),
  peakRssAnonMiB: Math.round(peakAnon / 1048576),
};
console.log(`sorter (${mode}): ${result.eventsPerSecond.toLocaleString('en')} events/s (${events} × ${payloadBytes} B, quota ${quotaMiB} MiB, ${spilled} spilled), peak RSS ${result.peakRssMiB} MiB (anonymous ${result.peakRssAnonMiB} MiB)`);
console.log(JSON.stringify(result));
