import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Box } from 'ink';
import { render } from 'ink-testing-library';
import { TopView } from '../../../src/ui/top/components/top-view.js';
import { TopApp } from '../../../src/ui/top/app.js';
import { initialState, reduce, type TableRow, type TableSnapshotRow, type TopState } from '../../../src/ui/top/state.js';
import { ApiClient } from '../../../src/core/api/client.js';
import { waitFor } from '../../helpers/wait-for.js';

const NOW = 1_700_000_000_000;

function state(): TopState {
  return reduce(initialState(NOW), {
    type: 'snapshot',
    snapshot: {
      clusterId: 'prod',
      server: 'http://127.0.0.1:8300',
      captures: [{ id: 'c1', address: '127.0.0.1:8300', isOwner: true }, { id: 'c2', address: '127.0.0.1:8301', isOwner: false }],
      changefeeds: Array.from({ length: 40 }, (_, i) => ({
        id: `feed-${String(i).padStart(2, '0')}`, namespace: 'default', state: 'normal', checkpointTs: '1',
        checkpointCoordinate: 'mysql-bin.000001:4', checkpointTime: NOW - i * 500, rowsPerSecond: 10, error: null,
      })),
      tables: null,
      takenAt: NOW,
    },
  }).state;
}

describe('cdc top views (ink-testing-library)', () => {
  it('renders the header and a scrolled window of changefeeds that fits 80×24', () => {
    const { lastFrame, unmount } = render(
      <Box width={80}>
        <TopView state={state()} server="http://127.0.0.1:8300" rows={24} />
      </Box>,
    );
    const frame = lastFrame() ?? '';
    assert.match(frame, /cluster prod/);
    assert.match(frame, /owner 127\.0\.0\.1:8300 · captures alive 2/);
    assert.match(frame, /feed-39/, 'worst lag first');
    assert.match(frame, /… \d+ more/, 'a long list scrolls');
    assert.ok(frame.split('\n').length <= 24, `the frame has ${frame.split('\n').length} lines`);
    assert.ok(frame.split('\n').every((line) => line.length <= 80), 'every line fits 80 columns');
    unmount();
  });

  it('fits the table view into 80 columns, and shows coordinates and resolved lag when wide', () => {
    const base = state();
    const t = (name: string) => ({
      table: name, captureId: 'c1aaaaaaaa', resolvedTs: '2', resolvedCoordinate: 'mysql-bin.000001:9', resolvedTime: NOW - 100,
      checkpointTs: '1', checkpointCoordinate: 'mysql-bin.000001:4', checkpointTime: NOW - 2500, rowsPerSecond: 1200, spilledBytes: 2048,
    });
    const s = { ...base, view: { kind: 'tables' as const, changefeedId: 'feed-01', namespace: 'default' }, snapshot: { ...base.snapshot!, tables: [t('shop.orders'), t('shop.items')] } };
    const narrow = render(<Box width={80}><TopView state={s} server="x" rows={24} columns={80} /></Box>);
    const frame = narrow.lastFrame() ?? '';
    assert.match(frame, /shop\.orders/);
    assert.doesNotMatch(frame, /COORDINATE/);
    assert.ok(frame.split('\n').every((line) => line.length <= 80), 'every line fits 80 columns');
    narrow.unmount();
    const wide = render(<TopView state={s} server="x" rows={24} columns={140} />);
    assert.match(wide.lastFrame() ?? '', /COORDINATE[\s\S]*mysql-bin\.000001:4/);
    wide.unmount();
  });

  it('shows the initial snapshot per table (bar, rows, rows/s, ETA, state, method) and its totals while it is copied', () => {
    const base = state();
    const t = (name: string, snapshot?: TableSnapshotRow): TableRow => ({
      table: name, captureId: 'c1aaaaaaaa', resolvedTs: '2', resolvedCoordinate: 'mysql-bin.000001:9', resolvedTime: NOW - 100,
      checkpointTs: '1', checkpointCoordinate: 'mysql-bin.000001:4', checkpointTime: NOW - 2500, rowsPerSecond: null, spilledBytes: 0,
      ...(snapshot === undefined ? {} : { snapshot }),
    });
    const tables = [
      t('shop.orders', { state: 'copying', method: 'chunks', rows: 45_000, estimatedRows: 100_000, chunks: 6, rowsPerSecond: 1200, etaSeconds: 45.8 }),
      t('shop.events', { state: 'copying', method: 'one-pass', rows: 12_345, estimatedRows: null, chunks: 0, rowsPerSecond: 800, etaSeconds: null }),
      t('shop.items', { state: 'done', method: 'chunks', rows: 2000, estimatedRows: 1950, chunks: 1, rowsPerSecond: null, etaSeconds: 0 }),
    ];
    const s = { ...base, sort: 'name' as const, view: { kind: 'tables' as const, changefeedId: 'feed-01', namespace: 'default' }, snapshot: { ...base.snapshot!, tables } };
    const narrow = render(<Box width={80}><TopView state={s} server="x" rows={24} columns={80} /></Box>);
    const frame = narrow.lastFrame() ?? '';
    const lines = frame.split('\n');
    assert.ok(lines.every((line) => line.length <= 80), `every line fits 80 columns:\n${frame}`);
    assert.ok(lines.length <= 24, `the frame has ${lines.length} lines`);
    assert.match(frame, /snapshot 1\/3 tables done · 59345 rows copied\n/, 'no total estimate while a table copied has none');
    assert.match(frame, /TABLE +STATE +METHOD +PROGRESS +ROWS +ROWS\/S +ETA/);
    assert.doesNotMatch(frame, /CP LAG|SPILL/, 'the replication columns give way to the copy');
    const line = (table: string) => lines.find((l) => l.includes(table)) ?? '';
    assert.match(line('shop.orders'), /copying chunks +████░░░░░░ {2}45% 45000 +1200 +46\.0s/);
    assert.match(line('shop.events'), /copying one-pass ▒▒▒▒▒▒▒▒▒▒ +— 12345 +800 +—/, 'indeterminate without an estimate');
    assert.match(line('shop.items'), /done +chunks +██████████ 100% 2000 +— +—/, 'capped at 100% though past the estimate');
    narrow.unmount();

    const wide = render(<Box width={130}><TopView state={s} server="x" rows={24} columns={130} /></Box>);
    const wideFrame = wide.lastFrame() ?? '';
    assert.match(wideFrame, /CAPTURE +STATE +METHOD +PROGRESS +ROWS +EST +CHUNKS +ROWS\/S +ETA/);
    assert.ok(wideFrame.split('\n').every((line) => line.length <= 130), `every line fits 130 columns:\n${wideFrame}`);
    assert.match(wideFrame, /shop\.orders +c1aaaaaa +copying chunks +█████████░░░░░░░░░░░ {2}45% 45000 +~100\.0k +6 +1200 +46\.0s/);
    wide.unmount();

    // every table done: back to the replication columns
    const done = tables.map((r) => ({ ...r, snapshot: { ...r.snapshot!, state: 'done' as const } }));
    const after = render(<Box width={80}><TopView state={{ ...s, snapshot: { ...s.snapshot, tables: done } }} server="x" rows={24} columns={80} /></Box>);
    assert.match(after.lastFrame() ?? '', /CP LAG/);
    assert.doesNotMatch(after.lastFrame() ?? '', /tables done/);
    after.unmount();
  });

  it('shows the disconnected banner with the retry period', () => {
    const s = reduce(state(), { type: 'connection', status: { kind: 'disconnected', since: NOW - 3000, retryEveryMs: 1000, error: 'ECONNREFUSED' } }).state;
    const { lastFrame, unmount } = render(<TopView state={s} server="http://127.0.0.1:8300" rows={24} />);
    assert.match(lastFrame() ?? '', /disconnected from http:\/\/127\.0\.0\.1:8300 for 3\.0s: ECONNREFUSED · retrying every 1s/);
    unmount();
  });

  it('shows the confirm line for a pending pause', () => {
    const s = { ...state(), confirm: { action: 'pause' as const, changefeedId: 'feed-07', namespace: 'default' } };
    const { lastFrame, unmount } = render(<TopView state={s} server="x" rows={24} />);
    assert.match(lastFrame() ?? '', /pause changefeed feed-07\? \(y\/N\)/);
    unmount();
  });

  it('the app sends POST …/pause?namespace=… to the API after p and y, for the changefeed\'s own namespace', async () => {
    const calls: string[] = [];
    // the real client's typed routes, answered here instead of over HTTP: the paths they build are recorded
    const client = Object.assign(new ApiClient('http://127.0.0.1:8300'), {
      request: (method: string, path: string) => {
        if (method !== 'GET') {
          calls.push(`${method} ${path}`);
          return Promise.resolve({});
        }
        if (path === '/api/v2/status') return Promise.resolve({ cluster_id: 'prod' });
        if (path === '/api/v2/captures') return Promise.resolve({ items: [{ id: 'c1', address: '127.0.0.1:8300', is_owner: true, cluster_id: 'prod' }] });
        return Promise.resolve({ items: [{ id: 'orders', namespace: 'team-a', upstream_id: 'u', state: 'normal', checkpoint_tso: '5', checkpoint_coordinate: 'mysql-bin.000001:5', checkpoint_time: null, error: null }] });
      },
    });
    const { lastFrame, stdin, unmount } = render(<TopApp client={client} intervalMs={200} />);
    try {
      await waitFor(() => /orders/.test(lastFrame() ?? ''), { what: 'the changefeed on screen' });
      stdin.write('p');
      await waitFor(() => /pause changefeed orders\?/.test(lastFrame() ?? ''), { what: 'the confirm line' });
      stdin.write('y');
      await waitFor(() => calls.length > 0, { what: 'the API call' });
      assert.deepEqual(calls, ['POST /api/v2/changefeeds/orders/pause?namespace=team-a']);
    } finally {
      unmount();
    }
  });

  it('the app reads a changefeed of 100,000 tables a page at a time: only the rows around the selection are asked for and drawn', async () => {
    const asked: URLSearchParams[] = [];
    const name = (i: number) => `db.t${String(i).padStart(6, '0')}`;
    const client = Object.assign(new ApiClient('http://127.0.0.1:8300'), {
      request: (method: string, path: string) => {
        if (path === '/api/v2/status') return Promise.resolve({ cluster_id: 'prod' });
        if (path === '/api/v2/captures') return Promise.resolve({ items: [{ id: 'c1', address: '127.0.0.1:8300', is_owner: true, cluster_id: 'prod' }] });
        const feed = { id: 'big', namespace: 'default', upstream_id: 'u', state: 'normal', checkpoint_tso: '5', checkpoint_coordinate: 'mysql-bin.000001:5', checkpoint_time: null, error: null };
        if (path.startsWith('/api/v2/changefeeds?')) return Promise.resolve({ items: [feed] });
        if (path.startsWith('/api/v2/changefeeds/big/tables?')) {
          const q = new URL(path, 'http://x').searchParams;
          asked.push(q);
          const offset = Number(q.get('offset') ?? 0);
          const limit = Number(q.get('limit'));
          const items = Array.from({ length: Math.min(limit, 100_000 - offset) }, (_, i) => ({
            table: name(offset + i), capture_id: 'c1', resolved_ts: '2', resolved_coordinate: 'b.1:9', resolved_time: NOW,
            checkpoint_ts: '1', checkpoint_coordinate: 'b.1:4', checkpoint_time: null, rows_per_second: null, spilled_bytes: 0,
          }));
          return Promise.resolve({ total: 100_000, offset, items, next: null });
        }
        if (path.startsWith('/api/v2/changefeeds/big?')) return Promise.resolve({ ...feed, task_status: [] });
        return Promise.reject(new Error(`unexpected ${method} ${path}`));
      },
    });
    const { lastFrame, stdin, unmount } = render(<TopApp client={client} intervalMs={5000} />);
    try {
      await waitFor(() => /big/.test(lastFrame() ?? ''), { what: 'the changefeed on screen' });
      stdin.write('\r');
      await waitFor(() => /100000 tables/.test(lastFrame() ?? ''), { what: 'the table view' });
      assert.ok(asked.every((q) => Number(q.get('limit')) <= 100), `pages of at most 100 rows: ${asked.map((q) => q.toString()).join(' ')}`);
      assert.match(lastFrame() ?? '', new RegExp(name(0)));
      for (let i = 0; i < 500; i++) stdin.write('\u001B[6~'); // PageDown
      await waitFor(() => new RegExp(name(5000)).test(lastFrame() ?? ''), { what: 'row 5000 on screen' });
      const last = asked[asked.length - 1];
      assert.ok(Number(last.get('offset')) > 4800 && Number(last.get('offset')) <= 5000, `the page around the selection was read: ${last.toString()}`);
      assert.equal(last.get('sort'), 'lag');
      assert.doesNotMatch(lastFrame() ?? '', new RegExp(name(0)));
    } finally {
      unmount();
    }
  });
});
