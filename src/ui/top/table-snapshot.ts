/**
 * The initial snapshot's columns of a changefeed's tables (`--snapshot initial`), shared by the table view and
 * the one-shot printer so both show the same: state, method, a progress bar of rows / estimated rows, rows
 * copied, rows/s and the time left.
 */
import type { SnapshotTotals, TableRow, TableSnapshotRow } from './state.js';
import { formatCount, formatEta, formatRate, pad, progressBar } from './format.js';

/** One column of a table's line; `color` names the ink colour the live view gives it. */
export interface SnapshotCell {
  readonly key: string;
  readonly text: string;
  readonly color?: string;
}

export const SNAPSHOT_STATE_COLORS: Record<TableSnapshotRow['state'], string> = { pending: 'gray', waiting: 'yellow', copying: 'cyan', done: 'green' };

/** Cells of the bar: 10 fit 80 columns; 20 when wide (≥ 130 columns, and the one-shot form). */
const barWidth = (wide: boolean): number => (wide ? 20 : 10);

/** Percent copied, capped at 100 (a table can outgrow its estimate); null without an estimate. */
export function snapshotPercent(s: TableSnapshotRow): number | null {
  if (s.state === 'done') return 100;
  if (s.estimatedRows === null || s.estimatedRows <= 0) return null;
  return Math.min(100, Math.floor((s.rows / s.estimatedRows) * 100));
}

/** The bar: filled to the percent; indeterminate while a table without an estimate is copied; empty before. */
export function snapshotBar(s: TableSnapshotRow | undefined, width: number): string {
  if (s === undefined) return ' '.repeat(width);
  const percent = snapshotPercent(s);
  if (percent !== null) return progressBar(percent / 100, width);
  return progressBar(s.state === 'copying' ? null : 0, width);
}

export function snapshotHeader(wide: boolean): string {
  return [
    pad('TABLE', 20),
    ...(wide ? [pad('CAPTURE', 9)] : []),
    pad('STATE', 7),
    pad('METHOD', 8),
    pad('PROGRESS', barWidth(wide) + 5),
    pad('ROWS', wide ? 8 : 7),
    ...(wide ? [pad('EST', 8), pad('CHUNKS', 6)] : []),
    pad('ROWS/S', 6),
    'ETA',
  ].join(' ');
}

export function snapshotCells(row: TableRow, wide: boolean): SnapshotCell[] {
  const s = row.snapshot;
  const percent = s === undefined ? null : snapshotPercent(s);
  const done = s?.state === 'done';
  return [
    { key: 'table', text: pad(row.table, 20) },
    ...(wide ? [{ key: 'capture', text: pad(row.captureId.slice(0, 8), 9) }] : []),
    { key: 'state', text: pad(s?.state ?? '—', 7), ...(s === undefined ? {} : { color: SNAPSHOT_STATE_COLORS[s.state] }) },
    { key: 'method', text: pad(s?.method ?? '—', 8) },
    { key: 'bar', text: snapshotBar(s, barWidth(wide)), color: done ? 'green' : 'cyan' },
    { key: 'percent', text: (percent === null ? '—' : `${percent}%`).padStart(4) },
    { key: 'rows', text: pad(s === undefined ? '—' : formatCount(s.rows), wide ? 8 : 7) },
    ...(wide
      ? [
          { key: 'estimated', text: pad(s === undefined || s.estimatedRows === null ? '—' : `~${formatCount(s.estimatedRows)}`, 8) },
          { key: 'chunks', text: pad(s === undefined ? '—' : String(s.chunks), 6) },
        ]
      : []),
    { key: 'rate', text: pad(done ? '—' : formatRate(s?.rowsPerSecond ?? null), 6) },
    { key: 'eta', text: done ? '—' : formatEta(s?.etaSeconds ?? null) },
  ];
}

/** A table's line as text (the one-shot form). */
export function snapshotLine(row: TableRow, wide: boolean): string {
  return snapshotCells(row, wide)
    .map((c) => c.text)
    .join(' ');
}

/** `2/5 tables done · 48213 rows copied of ~120000 (40%)`. */
export function formatSnapshotTotals(totals: SnapshotTotals): string {
  const of =
    totals.estimatedRows === null
      ? ''
      : ` of ~${formatCount(totals.estimatedRows)}${totals.estimatedRows > 0 ? ` (${Math.min(100, Math.floor((totals.rows / totals.estimatedRows) * 100))}%)` : ''}`;
  return `${totals.done}/${totals.tables} tables done · ${formatCount(totals.rows)} rows copied${of}`;
}
