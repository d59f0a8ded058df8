import { Box, Text } from 'ink';
import { lagMs, type SnapshotTotals, type TableRow } from '../state.js';
import { formatBytes, formatRate, formatTime, pad } from '../format.js';
import { formatSnapshotTotals, snapshotCells, snapshotHeader } from '../table-snapshot.js';
import { Lag } from './lag.js';
import { windowOf } from './window.js';

export interface TableListProps {
  readonly changefeedId: string;
  /** The rows loaded: all of them, or a page starting at `offset` among `total` (a long list is read a page at a time). */
  readonly rows: readonly TableRow[];
  readonly offset?: number;
  readonly total?: number;
  /** Index of the selected row among all `total`. */
  readonly selected: number;
  readonly now: number;
  readonly height: number;
  readonly filter: string;
  readonly editingFilter: boolean;
  /** Room for the coordinate and resolved-lag columns (≥ 130 columns); otherwise they are left out to fit 80. */
  readonly wide?: boolean;
  /**
   * The changefeed's initial snapshot summed over all its tables, while it is not done: the tables then show its
   * progress (bar, rows, rows/s, ETA) instead of the replication columns, under a line with the totals.
   */
  readonly snapshot?: SnapshotTotals | null;
}

export function TableList({ changefeedId, rows, offset = 0, total = rows.length, selected, now, height, filter, editingFilter, wide = false, snapshot = null }: TableListProps) {
  const { start, end } = windowOf(total, selected, snapshot === null ? height : height - 1);
  // the rows of the window that are loaded (a page being read after a jump shows what it has)
  const shown = rows.slice(Math.max(0, start - offset), Math.max(0, end - offset));
  const first = Math.max(start, offset);
  return (
    <Box flexDirection="column">
      <Text>
        changefeed <Text bold>{changefeedId}</Text> · {total} tables{filter !== '' || editingFilter ? ` · filter /${filter}${editingFilter ? '▏' : ''}` : ''}
      </Text>
      {snapshot === null ? (
        <Text bold>
          {`${pad('TABLE', 20)} ${pad('CAPTURE', 9)} ${pad('RESOLVED', 13)} ${pad('CHECKPOINT', 13)} ${wide ? `${pad('COORDINATE', 22)} ` : ''}${pad('CP LAG', 7)} ${wide ? `${pad('RS LAG', 7)} ` : ''}${pad('ROWS/S', 6)} SPILL`}
        </Text>
      ) : (
        <>
          <Text>
            snapshot <Text color="cyan">{formatSnapshotTotals(snapshot)}</Text>
          </Text>
          <Text bold>{snapshotHeader(wide)}</Text>
        </>
      )}
      {total === 0 ? <Text color="gray">no tables{filter === '' ? '' : ` match /${filter}`}</Text> : null}
      {shown.length === 0 && total > 0 ? <Text color="gray">reading tables {start + 1}–{end} of {total}…</Text> : null}
      {shown.map((row, i) =>
        snapshot === null ? (
          <Text key={`${row.table}@${row.captureId}`} inverse={first + i === selected}>
            {pad(row.table, 20)} {pad(row.captureId.slice(0, 8), 9)} {pad(formatTime(row.resolvedTime), 13)} {pad(formatTime(row.checkpointTime), 13)}{' '}
            {wide ? `${pad(row.checkpointCoordinate, 22)} ` : ''}
            <Lag lag={lagMs(row.checkpointTime, now)} width={7} /> {wide ? <Lag lag={lagMs(row.resolvedTime, now)} width={7} /> : null}
            {wide ? ' ' : ''}
            {pad(formatRate(row.rowsPerSecond), 6)} {formatBytes(row.spilledBytes)}
          </Text>
        ) : (
          <Text key={`${row.table}@${row.captureId}`} inverse={first + i === selected}>
            {snapshotCells(row, wide).map((cell, j) => (
              <Text key={cell.key} {...(cell.color === undefined ? {} : { color: cell.color })}>
                {j === 0 ? cell.text : ` ${cell.text}`}
              </Text>
            ))}
          </Text>
        ),
      )}
      {end < total ? <Text color="gray">… {total - end} more</Text> : null}
    </Box>
  );
}
