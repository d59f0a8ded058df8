import { Box, Text } from 'ink';
import { lagMs, type ChangefeedRow } from '../state.js';
import { formatRate, formatTime, pad } from '../format.js';
import { Lag } from './lag.js';
import { windowOf } from './window.js';

export interface ChangefeedListProps {
  readonly rows: readonly ChangefeedRow[];
  readonly selected: number;
  readonly now: number;
  readonly height: number;
}

const STATE_COLORS: Record<string, string> = { normal: 'green', warning: 'yellow', pending: 'yellow', stopped: 'gray', failed: 'red', finished: 'blue' };

export function ChangefeedList({ rows, selected, now, height }: ChangefeedListProps) {
  const { start, end } = windowOf(rows.length, selected, height);
  return (
    <Box flexDirection="column">
      <Text bold>{`${pad('CHANGEFEED', 22)} ${pad('STATE', 9)} ${pad('CHECKPOINT', 13)} ${pad('LAG', 8)} ${pad('ROWS/S', 7)} ERROR`}</Text>
      {rows.length === 0 ? <Text color="gray">no changefeeds (cdc changefeed create …)</Text> : null}
      {rows.slice(start, end).map((row, i) => {
        const isSelected = start + i === selected;
        return (
          <Text key={row.id} inverse={isSelected}>
            {pad(row.id, 22)} <Text color={STATE_COLORS[row.state] ?? 'white'}>{pad(row.state, 9)}</Text> {pad(formatTime(row.checkpointTime), 13)}{' '}
            <Lag lag={lagMs(row.checkpointTime, now)} width={8} /> {pad(formatRate(row.rowsPerSecond), 7)} <Text color="red">{row.error ?? ''}</Text>
          </Text>
        );
      })}
      {end < rows.length ? <Text color="gray">… {rows.length - end} more</Text> : null}
    </Box>
  );
}
