import { setFlagsFromString } from 'node:v8';

/** The V8 flag that sets how far the old generation may grow past what a full collection left live. */
const V8_FLAG = 'heap-growing-percent';

/** What `applyHeapGrowth` did: the flag it set, or why it left V8's own setting. */
export type HeapGrowth = { readonly applied: true; readonly flag: string } | { readonly applied: false; readonly reason: string };

/**
 * The V8 flag for a heap growth factor (`heap-growth`): 1.5 → `--heap-growing-percent=50`. Undefined when node
 * was started with its own `--heap-growing-percent` (node refuses it in NODE_OPTIONS): that wins.
 */
export function heapGrowthFlag(factor: number, execArgv: readonly string[] = process.execArgv): string | undefined {
  const given = (s: string): boolean => s.startsWith(`--${V8_FLAG}`) || s.startsWith(`--${V8_FLAG.replaceAll('-', '_')}`);
  if (execArgv.some(given)) return undefined;
  return `--${V8_FLAG}=${Math.round((factor - 1) * 100)}`;
}

/**
 * Bounds V8's heap growth for the server (`heap-growth`). After each full collection V8 lets the heap grow to
 * the live size times a factor it picks from the allocation rate, up to 4×: a capture streaming rows allocates
 * fast, so its heap (and RSS) grew to several times what is live, whatever the changefeeds' memory quotas
 * (a 2M-row snapshot under a 64 MiB quota peaked at 302–316 MiB RSS with ~50 MiB live; an idle capture of
 * 100,000 tables, ~300 MiB live, at 1.2 GiB). With a fixed factor the RSS follows the live data, and a full
 * collection comes sooner. The default, 2, is Go's GOGC=100 (TiCDC's): 1.5 kept the RSS lower still but its
 * extra full collections of a large live heap cost CPU (BENCHMARKS.md). Read at each collection, so setting it
 * at start takes effect.
 */
export function applyHeapGrowth(factor: number): HeapGrowth {
  const flag = heapGrowthFlag(factor);
  if (flag === undefined) return { applied: false, reason: `--${V8_FLAG} given on node's command line` };
  setFlagsFromString(flag);
  return { applied: true, flag };
}
