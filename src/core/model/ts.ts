import { TidemarkError } from '../errors/index.js';

/**
 * A Tidemark ts (DESIGN §2): the binlog coordinate of a transaction's commit,
 * (file sequence number << 32) | end position of its XID or COMMIT event. Deterministic, monotonic in
 * commit order (a rotate moves to the next file number) and directly the position to resume from.
 */
export type Ts = bigint;

export function makeTs(fileSeq: number, position: number): Ts {
  return (BigInt(fileSeq) << 32n) | BigInt(position);
}

export function tsFileSeq(ts: Ts): number {
  return Number(ts >> 32n);
}

export function tsPosition(ts: Ts): number {
  return Number(ts & 0xffffffffn);
}

/** `mysql-bin.000042:1234` */
export function formatCoordinate(ts: Ts, basename = 'mysql-bin'): string {
  return `${basename}.${String(tsFileSeq(ts)).padStart(6, '0')}:${tsPosition(ts)}`;
}

/** The binlog file a ts lies in. */
export function tsFile(ts: Ts, basename: string): string {
  return `${basename}.${String(tsFileSeq(ts)).padStart(6, '0')}`;
}

/**
 * Parses a ts given as a decimal number or a binlog coordinate (`mysql-bin.000042:1234`). The time form
 * needs the upstream (it is resolved against its binlog) and is handled by the caller.
 */
export function parseTs(text: string, what = 'ts'): Ts {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    const ts = BigInt(trimmed);
    if (ts >= 1n << 64n) throw new TidemarkError('ErrInvalidTs', `invalid ${what} "${text}": larger than 64 bits`);
    return ts;
  }
  const m = /^[^:\s]*\.(\d+):(\d+)$/.exec(trimmed);
  if (m !== null) {
    const position = Number(m[2]);
    if (position > 0xffffffff) throw new TidemarkError('ErrInvalidTs', `invalid ${what} "${text}": position beyond 32 bits`);
    return makeTs(Number(m[1]), position);
  }
  throw new TidemarkError('ErrInvalidTs', `invalid ${what} "${text}": expected a ts number, a binlog coordinate such as mysql-bin.000042:1234, or (for --start-ts) a time such as 2026-11-23T06:00:00Z`);
}
