import { Box, Text } from 'ink';
import type { ConnectionStatus, TopSnapshot } from '../state.js';
import { formatLag } from '../format.js';

export interface HeaderProps {
  readonly server: string;
  readonly snapshot: TopSnapshot | null;
  readonly connection: ConnectionStatus;
  readonly now: number;
}

/** Cluster id, owner, captures alive and the connection state. */
export function Header({ server, snapshot, connection, now }: HeaderProps) {
  const owner = snapshot?.captures.find((c) => c.isOwner);
  return (
    <Box flexDirection="column">
      <Box justifyContent="space-between">
        <Text bold>tidemark top · cluster {snapshot?.clusterId ?? '?'} · {server}</Text>
        <ConnectionBadge connection={connection} now={now} />
      </Box>
      <Text>
        owner {owner === undefined ? <Text color="red">none</Text> : <Text color="cyan">{owner.address}</Text>} · captures alive{' '}
        {snapshot?.captures.length ?? 0}
      </Text>
      {connection.kind === 'disconnected' ? (
        <Text backgroundColor="red" color="white">
          {' '}disconnected from {server} for {formatLag(now - connection.since)}: {connection.error} · retrying every {connection.retryEveryMs / 1000}s{' '}
        </Text>
      ) : null}
    </Box>
  );
}

function ConnectionBadge({ connection, now }: { readonly connection: ConnectionStatus; readonly now: number }) {
  switch (connection.kind) {
    case 'connecting':
      return <Text color="yellow">connecting…</Text>;
    case 'connected':
      return <Text color="green">connected {formatLag(now - connection.since)}</Text>;
    case 'disconnected':
      return <Text color="red">disconnected</Text>;
  }
}
