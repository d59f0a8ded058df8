import type { ChangefeedDetail, ChangefeedSnapshotSummary, ChangefeedSummary } from '../core/api/model.js';


/** One line per changefeed for the human form of list. */
export function formatSummary(c: ChangefeedSummary): string {
  const error = c.error === null ? '' : `  error: ${c.error.code}: ${c.error.message}`;
  return `${c.id}  ${c.state}  checkpoint ${c.checkpoint_tso} (${c.checkpoint_coordinate}${c.checkpoint_time === null ? '' : `, ${c.checkpoint_time}`})${error}`;
}

export function formatDetail(c: ChangefeedDetail): string {
  return [
    `ID:           ${c.id} (namespace ${c.namespace})`,
    `State:        ${c.state}`,
    `Sink URI:     ${c.sink_uri}`,
    `Checkpoint:   ${c.checkpoint_tso}  ${c.checkpoint_coordinate}${c.checkpoint_time === null ? '' : `  ${c.checkpoint_time}`}`,
    `Resolved ts:  ${c.resolved_ts}`,
    `Start ts:     ${c.start_ts}`,
    `Target ts:    ${c.target_ts === '0' ? '(none)' : c.target_ts}`,
    `Created:      ${c.create_time} by ${c.creator_version}`,
    `Error:        ${c.error === null ? '(none)' : `${c.error.code}: ${c.error.message} at ${c.error.time}`}`,
    `Warning:      ${c.warning === null ? '(none)' : `${c.warning.code}: ${c.warning.message} at ${c.warning.time}`}`,
    ...(c.task_status.length === 0 ? [] : [`Tables:       ${c.task_status.reduce((n, t) => n + t.table_count, 0)} on ${c.task_status.length} capture${c.task_status.length === 1 ? '' : 's'} (\`cdc top\` lists them)`]),
    ...(c.snapshot === undefined ? [] : [`Snapshot:     ${formatSnapshotSummary(c.snapshot)}`]),
  ].join('\n');
}

/** `initial · 2/5 tables done · 48213 rows copied of ~120000`; `schema (definitions only)`. */
export function formatSnapshotSummary(s: ChangefeedSnapshotSummary): string {
  if (s.mode === 'schema') return 'schema (definitions only)';
  const of = s.estimated_rows === null ? '' : ` of ~${s.estimated_rows}`;
  return `${s.mode} · ${s.tables_done}/${s.tables} tables done · ${s.rows_copied} rows copied${of}`;
}
