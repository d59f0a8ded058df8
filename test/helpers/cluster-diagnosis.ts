import type { Etcd3 } from 'etcd3';

/**
 * A short account of a cluster's state in etcd and of its server log, for the message of a wait that timed out:
 * CI shows a failing test's error in full but may leave out what the test printed before it. It lists the
 * captures, the owner, each changefeed's state, error, checkpoint and barrier, each task position's checkpoint, error
 * and table count with its slowest table, the log's last lines about DDL and the shared binlog read (where a stuck
 * barrier shows), and its last warnings and errors, a warning repeated in a row given once with its count.
 */
export async function clusterDiagnosis(etcd: Etcd3, clusterId: string, log: string, maxChars = 4500): Promise<string> {
  const parts: string[] = [];
  try {
    const kvs = await etcd.getAll().prefix(`/tidb/cdc/${clusterId}/`).strings();
    const captures: string[] = [];
    const owners: string[] = [];
    const changefeeds: string[] = [];
    const positions: string[] = [];
    for (const [key, value] of Object.entries(kvs)) {
      const rest = key.slice(`/tidb/cdc/${clusterId}/`.length);
      if (rest.startsWith('__cdc_meta__/capture/')) captures.push(rest.slice('__cdc_meta__/capture/'.length));
      else if (rest.startsWith('__cdc_meta__/owner/')) owners.push(value);
      else if (/^[^/]+\/changefeed\/info\//.test(rest)) {
        const info = parse(value);
        const error = info?.['error'] as { code?: string; message?: string } | null | undefined;
        changefeeds.push(`${rest.replace('/changefeed/info/', '/')} ${String(info?.['state'])}${error ? ` (${error.code}: ${String(error.message).slice(0, 200)})` : ''}`);
      } else if (/^[^/]+\/changefeed\/status\//.test(rest)) {
        const status = parse(value);
        changefeeds.push(`${rest.replace('/changefeed/status/', '/')} checkpoint ${String(status?.['checkpoint-ts'])} barrier ${String(status?.['min-table-barrier-ts'])}`);
      } else if (/^[^/]+\/task\/position\//.test(rest)) {
        const p = parse(value);
        const tables = (p?.['tables'] as { table: string; state?: string; checkpoint_ts: string }[] | undefined) ?? [];
        const slowest = tables.reduce<(typeof tables)[number] | undefined>((s, t) => (s === undefined || BigInt(t.checkpoint_ts) < BigInt(s.checkpoint_ts) ? t : s), undefined);
        const error = (p?.['error'] ?? p?.['warning']) as { code?: string; message?: string } | null | undefined;
        positions.push(
          `${rest.replace('/task/position/', ' ')}: checkpoint ${String(p?.['checkpoint-ts'])} resolved ${String(p?.['resolved-ts'])}, ${tables.length} tables` +
            (slowest === undefined ? '' : `, slowest ${slowest.table} at ${slowest.checkpoint_ts} (${slowest.state ?? '?'})`) +
            (error ? `, ${error.code}: ${String(error.message).slice(0, 200)}` : ''),
        );
      }
    }
    parts.push(`captures [${captures.join(', ')}]`, `owner ${owners.join(', ') || 'none'}`, `changefeeds: ${changefeeds.join('; ')}`, `task positions: ${positions.join('; ')}`);
  } catch (error) {
    parts.push(`etcd not read: ${(error as Error).message}`);
  }
  const lines = log.split('\n');
  const story = lines
    .filter((line) => /DDL|barrier|shared binlog read|on its own|binlog reader restarts/.test(line) && !/"level":"debug"|\bDEBUG\b/.test(line))
    .slice(-6)
    .map((line) => line.slice(0, 300));
  parts.push(`log on DDL and the shared read (last ${story.length}): ${story.join(' | ') || 'none'}`);
  const problems: { line: string; message: string; times: number }[] = [];
  for (const line of lines) {
    if (!/"level":"(warn|error)"|\b(WARN|ERROR)\b/.test(line)) continue;
    const message = messageOf(line);
    const last = problems[problems.length - 1];
    if (last !== undefined && last.message === message) {
      last.line = line;
      last.times++;
    } else problems.push({ line, message, times: 1 });
  }
  const shown = problems.slice(-8).map(({ line, times }) => `${times > 1 ? `(${times}× in a row, the last:) ` : ''}${line.slice(0, 300)}`);
  parts.push(`log warnings/errors (last ${shown.length}): ${shown.join(' | ') || 'none'}`);
  return parts.join('\n').slice(0, maxChars);
}

/** A log line's message without its time and fields (text logs put it in brackets after the level). */
function messageOf(line: string): string {
  const json = /"msg":"([^"]*)"/.exec(line);
  if (json !== null) return json[1];
  const text = /\[(?:WARN|ERROR)\] \["([^"]*)"\]/.exec(line);
  return text === null ? line : text[1];
}

function parse(value: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(value) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
