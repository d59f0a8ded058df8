import { Box, Text } from 'ink';

export const HELP_LINES: readonly [string, string][] = [
  ['↑/↓, PgUp/PgDn', 'select'],
  ['Enter', 'open the selected changefeed\'s tables'],
  ['Esc', 'back to the changefeeds'],
  ['s', 'cycle the sort: lag, name, rows/s'],
  ['/', 'filter tables by name (Enter keeps it, Esc clears it)'],
  ['p / r', 'pause / resume the selected changefeed (asks first)'],
  ['?', 'this help (any key closes it)'],
  ['q', 'quit'],
];

export function Help() {
  return (
    <Box flexDirection="column" borderStyle="round" paddingX={1}>
      <Text bold>keys</Text>
      {HELP_LINES.map(([key, what]) => (
        <Text key={key}>
          <Text color="cyan">{key.padEnd(16)}</Text> {what}
        </Text>
      ))}
    </Box>
  );
}
