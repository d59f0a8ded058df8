import { setFlagsFromString } from 'node:v8';

/** The V8 flag that sets how far the old generation may grow past what a full collection left live. */
const V8_FLAG = 'heap-growing-percent';
/** The V8 flag that lets objects of an allocation site whose objects outlived a collection be made in the old generation. */
const PRETENURING_FLAG = 'allocation-site-pretenuring';

/** Whether node's command line sets the V8 flag `name` (either spelling, either sense: --name, --no-name, --name=…). */
function givenOnCommandLine(name: string, execArgv: readonly string[]): boolean {
  return execArgv.some((arg) => {
    if (!arg.startsWith('--')) return false;
    const flag = arg.slice(2).split('=')[0].replaceAll('_', '-');
    return flag === name || flag === `no-${name}` || flag === `no${name}`;
  });
}

/** What `applyHeapGrowth` did: the flag it set, or why it left V8's own setting. */
export type HeapGrowth = { readonly applied: true; readonly flag: string } | { readonly applied: false; readonly reason: string };

/**
 * The V8 flag for a heap growth factor (`heap-growth`): 1.5 → `--heap-growing-percent=50`. Undefined when node
 * was started with its own `--heap-growing-percent` (node refuses it in NODE_OPTIONS): that wins.
 */
export function heapGrowthFlag(factor: number, execArgv: readonly string[] = process.execArgv): string | undefined {
  if (givenOnCommandLine(V8_FLAG, execArgv)) return undefined;
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

/**
 * The V8 flag that turns allocation-site pretenuring off; undefined when node's command line sets pretenuring
 * either way (that wins).
 *
 * V8 watches, at each young-generation collection, how many objects of each allocation site survived it; a site
 * above a threshold has its objects made in the old generation from then on. A capture's row objects (decoded
 * values, the RowChangedEvent around them, encoded messages) live from a read until the sink takes them: usually
 * less than one young collection, but at a backlog's start, or whenever the sink pauses, enough of them survive
 * one to pass the threshold. From then on every row was made in the old generation and died there, so full
 * collections came every ~130 ms of a drain: in paired runs of the blackhole backlog, 5 of 10 runs without the
 * flag went at 400–445k rows/s with 3.0–3.3 CPU-s per 1M rows, against 530–590k and 2.0–2.4 with it (BENCHMARKS.md).
 */
export function pretenuringFlag(execArgv: readonly string[] = process.execArgv): string | undefined {
  return givenOnCommandLine(PRETENURING_FLAG, execArgv) ? undefined : `--no-${PRETENURING_FLAG}`;
}

/** Turns V8's allocation-site pretenuring off for the server (see pretenuringFlag); read at each collection. */
export function applyPretenuring(): { readonly applied: boolean } {
  const flag = pretenuringFlag();
  if (flag === undefined) return { applied: false };
  setFlagsFromString(flag);
  return { applied: true };
}
