import { Box, Text } from 'ink';
import { snapshotInProgress, snapshotTotals, visibleChangefeeds, visibleTables, type TopState } from '../state.js';
import { ChangefeedList } from './changefeed-list.js';
import { Header } from './header.js';
import { Help } from './help.js';
import { TableList } from './table-list.js';

export interface TopViewProps {
  readonly state: TopState;
  readonly server: string;
  /** Terminal rows available to the whole view. */
  readonly rows: number;
  /** Terminal columns; narrow terminals get fewer table columns. */
  readonly columns?: number;
}

/** The whole screen, a pure function of the state. */
export function TopView({ state, server, rows, columns = 80 }: TopViewProps) {
  const listHeight = Math.max(3, rows - 8);
  const tables = state.snapshot?.tables ?? [];
  // a page of tables cannot sum the snapshot over all of them: the changefeed's own totals are used then
  const open = state.snapshot?.openSnapshot;
  const snapshot = open !== undefined ? open : snapshotInProgress(tables) ? snapshotTotals(tables) : null;
  const page = state.snapshot?.tablePage;
  return (
    <Box flexDirection="column">
      <Header server={server} snapshot={state.snapshot} connection={state.connection} now={state.now} />
      <Box marginTop={1}>
        {state.help ? (
          <Help />
        ) : state.view.kind === 'changefeeds' ? (
          <ChangefeedList rows={visibleChangefeeds(state)} selected={state.selected} now={state.now} height={listHeight} />
        ) : (
          <TableList
            changefeedId={state.view.changefeedId}
            rows={visibleTables(state)}
            {...(page === undefined ? {} : { offset: page.offset, total: page.total })}
            selected={state.selected}
            now={state.now}
            height={listHeight - 1}
            wide={columns >= 130}
            filter={state.filter}
            editingFilter={state.editingFilter}
            snapshot={snapshot}
          />
        )}
      </Box>
      <Box marginTop={1}>
        {state.confirm !== null ? (
          <Text color="yellow" bold>
            {state.confirm.action} changefeed {state.confirm.changefeedId}? (y/N)
          </Text>
        ) : (
          <Text color="gray">
            sort {state.sort} · ↑↓ Enter Esc · s sort · / filter · p/r pause/resume · ? help · q quit
            {state.message === null ? '' : `  ·  ${state.message}`}
          </Text>
        )}
      </Box>
    </Box>
  );
}
