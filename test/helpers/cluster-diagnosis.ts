import type { Etcd3 } from 'etcd3';

/**
 * A short account of a cluster's state in etcd and of its server log, for the message of a wait that timed out:
 * CI shows a failing test's error in full but may leave out what the test printed before it. It lists the
 * captures, the owner, each changefeed's state, error and checkpoint, each task position's checkpoint, error and
 * table count with its slowest table, and the log's last warnings and errors.
 */
export async function clusterDiagnosis(etcd: Etcd3, clusterId: string, log: string, maxChars = 3000): Promise<string> {
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
        changefeeds.push(`${rest.replace('/changefeed/status/', '/')} checkpoint ${String(parse(value)?.['checkpoint-ts'])}`);
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
  const problems = log
    .split('\n')
    .filter((line) => /"level":"(warn|error)"|\b(WARN|ERROR)\b/.test(line))
    .slice(-8)
    .map((line) => line.slice(0, 300));
  parts.push(`log warnings/errors (last ${problems.length}): ${problems.join(' | ') || 'none'}`);
  return parts.join('\n').slice(0, maxChars);
}

function parse(value: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(value) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
