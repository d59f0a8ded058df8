/**
 * Sorter memory while spilled events are read back. Prints RSS, anonymous RSS, the resident part of LevelDB's
 * mapped table files (`*.ldb`), heapUsed, heapTotal, external and arrayBuffers once a second; peaks are taken
 * every 100 ms. Ends with one JSON line: RSS after the writes, peak and final RSS of the read-back, and the RSS
 * it added per event read.
 * usage: node --import tsx bench/sorter-rss.ts [events=1000000] [payloadBytes=100] [quotaMiB=16] [mode=backlog|lagging]
 * backlog: no resolved-ts until all N are added (a stalled sink: everything beyond the quota spills), then a
 *   reader drains them;
 * lagging: resolved-ts moves every 10k events and a reader slower than the writer drains concurrently, so the
 *   disk segment is read while it still grows.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryQuota, SpillStore, TableSorter } from '../src/core/pipeline/sorter/index.js';

const args = process.argv.slice(2);
const [events = 1_000_000, payloadBytes = 100, quotaMiB = 16] = args.slice(0, 3).map(Number);
const mode = args[3] ?? 'backlog';
if (mode !== 'backlog' && mode !== 'lagging') throw new Error(`mode must be backlog or lagging, not ${mode}`);
const MiB = 1024 * 1024;
const store = await SpillStore.open(join(mkdtempSync(join(tmpdir(), 'tidemark-bench-sorter-rss-')), 'store'));
const quota = new MemoryQuota(quotaMiB * MiB);
const sorter = new TableSorter(1, quota, store);
const payload = Buffer.alloc(payloadBytes, 0x61);

/** RSS less file-backed pages. */
function rssAnon(): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}
/** Resident bytes of LevelDB's table files (`*.ldb`), which LevelDB reads through mmap. */
function ldbMapped(): { files: number; bytes: number } {
  let files = 0;
  let kb = 0;
  let inLdb = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      inLdb = line.endsWith('.ldb') || line.endsWith('.ldb (deleted)');
      if (inLdb) files++;
    } else if (inLdb && line.startsWith('Rss:')) kb += Number(/(\d+)/.exec(line)?.[1] ?? 0);
  }
  return { files, bytes: kb * 1024 };
}
const mib = (bytes: number): string => (bytes / MiB).toFixed(1).padStart(6);

let phase: 'write' | 'read' = 'write';
let added = 0;
let read = 0;
const peak = { rss: 0, anon: 0, ldb: 0 };
const started = process.hrtime.bigint();
function sample(): void {
  const m = process.memoryUsage();
  const ldb = ldbMapped();
  const t = (Number(process.hrtime.bigint() - started) / 1e9).toFixed(1).padStart(5);
  console.log(
    `${t}s ${phase.padEnd(5)} added ${String(added).padStart(8)} read ${String(read).padStart(8)}  rss ${mib(m.rss)}  anon ${mib(rssAnon())}  ldb ${String(ldb.files).padStart(3)} files ${mib(ldb.bytes)}  heapUsed ${mib(m.heapUsed)}  heapTotal ${mib(m.heapTotal)}  external ${mib(m.external)}  arrayBuffers ${mib(m.arrayBuffers)} MiB`,
  );
}
let ticks = 0;
/** Peaks of the read-back (the whole run when lagging) every 100 ms, a line every second. */
function tick(): void {
  if (phase === 'read' || mode === 'lagging') {
    peak.rss = Math.max(peak.rss, process.memoryUsage().rss);
    peak.anon = Math.max(peak.anon, rssAnon());
    peak.ldb = Math.max(peak.ldb, ldbMapped().bytes);
  }
  if (++ticks % 10 === 0) sample();
}
const sampler = setInterval(tick, 100);

const signal = new AbortController().signal;
async function drain(): Promise<void> {
  while (read < events) {
    if ((await sorter.next(signal)).kind === 'event') read++;
    if (mode === 'lagging' && read % 100 === 0) await new Promise((resolve) => setImmediate(resolve)); // a sink slower than the puller
  }
}
const lagging = mode === 'lagging' ? drain() : undefined;
for (; added < events; added++) {
  const ts = BigInt(1 + Math.floor(added / 4));
  sorter.add({ ts, seq: added % 4, payload });
  if (added % 10_000 === 9_999) {
    if (mode === 'lagging') sorter.advanceResolved(ts - 1n);
    await sorter.writable();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
const writeSeconds = Number(process.hrtime.bigint() - started) / 1e9;
sample();
const rssAfterWrite = process.memoryUsage().rss;
phase = 'read';
const readStarted = process.hrtime.bigint();
sorter.advanceResolved(BigInt(events));
await (lagging ?? drain());
const readSeconds = Number(process.hrtime.bigint() - readStarted) / 1e9;
tick();
sample();
const rssAfterRead = process.memoryUsage().rss;
clearInterval(sampler);
const spilled = sorter.stats.spilledEvents;
await sorter.close();
await store.destroy();
const result = {
  bench: 'sorter-rss',
  mode,
  events,
  payloadBytes,
  quotaMiB,
  spilledEvents: spilled,
  writeSeconds: Number(writeSeconds.toFixed(2)),
  readSeconds: Number(readSeconds.toFixed(2)),
  rssAfterWriteMiB: Math.round(rssAfterWrite / MiB),
  peakRssMiB: Math.round(peak.rss / MiB),
  peakAnonMiB: Math.round(peak.anon / MiB),
  peakLdbMappedMiB: Math.round(peak.ldb / MiB),
  rssAfterReadMiB: Math.round(rssAfterRead / MiB),
  rssBytesPerEventRead: Math.round((rssAfterRead - rssAfterWrite) / Math.max(1, read - (events - spilled))),
};
console.log(JSON.stringify(result));
