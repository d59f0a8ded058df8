// Loaded into the cdc server with `node --import` by `npm run bench -- … --memory-profile`: where the memory of a
// run goes. It samples process.memoryUsage() every 100 ms and keeps the sample of the highest RSS, and runs V8's
// sampling heap profiler with the objects the collector freed counted too (so it shows what was allocated, not
// only what survived). Both are written when the process exits (the bench stops the server with SIGTERM), to
// `$TIDEMARK_BENCH_MEMORY_OUT.memory.json` and `$TIDEMARK_BENCH_MEMORY_OUT.heapprofile`.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import process from 'node:process';
import { clearInterval, setInterval } from 'node:timers';
import { isMainThread } from 'node:worker_threads';

const out = process.env['TIDEMARK_BENCH_MEMORY_OUT'];
if (isMainThread && out !== undefined && out !== '') {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  session.post('HeapProfiler.startSampling', { samplingInterval: 32 * 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  let peak = process.memoryUsage();
  let samples = 0;
  const timer = setInterval(() => {
    const now = process.memoryUsage();
    samples++;
    if (now.rss > peak.rss) peak = now;
  }, 100);
  timer.unref();
  process.on('exit', () => {
    clearInterval(timer);
    const mib = (n) => Math.round((n / 1048576) * 10) / 10;
    const atPeak = { rssMiB: mib(peak.rss), heapTotalMiB: mib(peak.heapTotal), heapUsedMiB: mib(peak.heapUsed), externalMiB: mib(peak.external), arrayBuffersMiB: mib(peak.arrayBuffers), samples };
    writeFileSync(`${out}.memory.json`, JSON.stringify(atPeak));
    // an in-process inspector session answers synchronously, so the profile is written before the process ends
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (error === null && result !== undefined) writeFileSync(`${out}.heapprofile`, JSON.stringify(result.profile));
    });
  });
}
