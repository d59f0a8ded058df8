import { useEffect, useReducer, useRef } from 'react';
import { useApp, useInput, useStdout } from 'ink';
import type { ApiClient } from '../../core/api/client.js';
import { TopView } from './components/top-view.js';
import { fetchSnapshot, type OpenChangefeed } from './snapshot.js';
import { initialState, reduce, tablePageStale, tableWindow, type TopEffect, type TopEvent, type TopState } from './state.js';

export interface TopAppProps {
  readonly client: ApiClient;
  readonly intervalMs: number;
}

interface Store {
  state: TopState;
  effects: TopEffect[];
}

function storeReducer(store: Store, event: TopEvent): Store {
  const { state, effects } = reduce(store.state, event);
  return { state, effects: [...store.effects, ...effects] };
}

/**
 * The live `cdc top`: polls the OpenAPI every interval, feeds snapshots, key presses and connection changes
 * to the reducer, and runs the effects it returns (pause/resume calls, quit).
 */
export function TopApp({ client, intervalMs }: TopAppProps) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [store, dispatch] = useReducer(storeReducer, undefined, () => ({ state: initialState(Date.now()), effects: [] }));
  const openChangefeed = useRef<{ id: string; namespace: string } | null>(null);
  const connected = useRef<boolean | null>(null);
  // the rows the table list can show (TopView's list, less its header line): only they are read
  const listHeight = Math.max(3, (stdout.rows || 24) - 8) - 1;
  const window = useRef(tableWindow(store.state, listHeight));
  window.current = tableWindow(store.state, listHeight);
  const pollNow = useRef<() => void>(() => undefined);

  useEffect(() => {
    let stopped = false;
    let polling = false;
    let again = false;
    let timer: NodeJS.Timeout | undefined;
    const poll = async (): Promise<void> => {
      if (polling) {
        again = true;
        return;
      }
      polling = true;
      clearTimeout(timer);
      try {
        const open: OpenChangefeed | null = openChangefeed.current === null ? null : { ...openChangefeed.current, window: window.current };
        const snapshot = await fetchSnapshot(client, open);
        if (stopped) return;
        if (connected.current !== true) dispatch({ type: 'connection', status: { kind: 'connected', since: Date.now() } });
        connected.current = true;
        dispatch({ type: 'snapshot', snapshot });
      } catch (error) {
        if (stopped) return;
        if (connected.current !== false) {
          dispatch({ type: 'connection', status: { kind: 'disconnected', since: Date.now(), retryEveryMs: intervalMs, error: (error as Error).message } });
        }
        connected.current = false;
      }
      dispatch({ type: 'tick', now: Date.now() });
      polling = false;
      if (stopped) return;
      if (again) {
        again = false;
        void poll();
      } else timer = setTimeout(() => void poll(), intervalMs);
    };
    pollNow.current = () => void poll();
    void poll();
    return () => {
      stopped = true;
      pollNow.current = () => undefined;
      clearTimeout(timer);
    };
  }, [client, intervalMs]);

  // a page that no longer holds what is shown (scrolled past it, another sort or filter) is read again at once
  const stale = tablePageStale(store.state, listHeight);
  useEffect(() => {
    if (stale) pollNow.current();
  }, [stale, store.state.selected, store.state.sort, store.state.filter]);

  useEffect(() => {
    if (store.effects.length === 0) return;
    const effects = store.effects.splice(0);
    for (const effect of effects) {
      if (effect.kind === 'quit') exit();
      else if (effect.kind === 'openChangefeed') {
        openChangefeed.current = effect.changefeed;
        pollNow.current();
      }
      else {
        (effect.kind === 'pause' ? client.pauseChangefeed(effect.changefeedId, effect.namespace) : client.resumeChangefeed(effect.changefeedId, effect.namespace)).then(
          () => dispatch({ type: 'actionDone', message: `${effect.changefeedId}: ${effect.kind} done` }),
          (error: Error) => dispatch({ type: 'actionDone', message: `${effect.changefeedId}: ${effect.kind} failed: ${error.message}` }),
        );
      }
    }
  }, [store, client, exit]);

  useInput((input, key) => {
    dispatch({
      type: 'key',
      key: { input, upArrow: key.upArrow, downArrow: key.downArrow, return: key.return, escape: key.escape, backspace: key.backspace || key.delete, pageUp: key.pageUp, pageDown: key.pageDown },
    });
  });

  return <TopView state={store.state} server={client.base.origin} rows={stdout.rows || 24} columns={stdout.columns || 80} />;
}
