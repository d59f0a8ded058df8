import { lagMs, snapshotTotals } from './state.js';
import type { TopSnapshot } from './state.js';
import { formatLag, formatTime, pad } from './format.js';
import { formatSnapshotTotals, snapshotHeader, snapshotLine } from './table-snapshot.js';

/**
 * The one-shot text form of a snapshot (`cdc top --once`, or stdout not a TTY): the changefeeds, then for each
 * whose initial snapshot is not done its totals and its tables' progress (the table view's wide columns).
 */
export function formatSnapshot(snapshot: TopSnapshot, now: number): string {
  const owner = snapshot.captures.find((c) => c.isOwner);
  const lines = [
    `cluster ${snapshot.clusterId} · owner ${owner?.address ?? 'none'} · captures ${snapshot.captures.length}`,
    `${pad('CHANGEFEED', 22)} ${pad('STATE', 9)} ${pad('CHECKPOINT TS', 20)} ${pad('COORDINATE', 22)} ${pad('TIME', 13)} LAG`,
    ...snapshot.changefeeds.map(
      (c) => `${pad(c.id, 22)} ${pad(c.state, 9)} ${pad(c.checkpointTs, 20)} ${pad(c.checkpointCoordinate, 22)} ${pad(formatTime(c.checkpointTime), 13)} ${formatLag(lagMs(c.checkpointTime, now))}${c.error === null ? '' : `  ${c.error}`}`,
    ),
  ];
  for (const { changefeedId, tables } of snapshot.snapshotTables ?? []) {
    lines.push('', `snapshot of ${changefeedId} · ${formatSnapshotTotals(snapshotTotals(tables))}`, snapshotHeader(true), ...tables.map((t) => snapshotLine(t, true)));
  }
  return lines.join('\n');
}
