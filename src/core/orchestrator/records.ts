/**
 * The JSON records of a cluster's etcd keys (DESIGN §3), decoded once where they enter the mirror
 * (`GlobalReactorState.update`) and where a patch reads a key's current value, so nothing past this file casts
 * them. Unknown fields are kept (`passthrough`): a record written by a newer capture survives a patch by an
 * older one.
 */
import { z } from 'zod';
import { AdminJobType, FEED_STATES, type ChangefeedInfo, type ChangefeedStatus, type RunningError } from '../model/changefeed.js';
import type { TaskPosition, TaskPositionTable } from '../model/task-position.js';
import type { EncodedKey, TableSnapshotRecord } from '../snapshot/progress.js';
import type { CaptureInfo } from '../model/capture.js';
import type { UpstreamRecord } from '../model/upstream.js';
import { PatchSkip, type DataPatch } from './reactor.js';

/** How one kind of record is decoded: a name for messages, and the decoder. */
export interface EtcdRecord<T> {
  /** What the record is, for a message: "changefeed info". */
  readonly what: string;
  decode(value: unknown): { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };
}

/**
 * `T` as zod types an optional field (`x?: number | undefined`); JSON has no undefined, so what decodes is a `T`
 * even under exactOptionalPropertyTypes.
 */
type Decoded<T> = { [K in keyof T]: Partial<Pick<T, K>> extends Pick<T, K> ? T[K] | undefined : T[K] };

function record<T>(what: string, schema: z.ZodType<Decoded<T>, z.ZodTypeDef, unknown>): EtcdRecord<T> {
  return {
    what,
    decode(value) {
      const parsed = schema.safeParse(value);
      if (parsed.success) return { ok: true, value: parsed.data as T };
      const issue = parsed.error.issues[0];
      const where = issue === undefined || issue.path.length === 0 ? '' : ` at ${issue.path.join('.')}`;
      return { ok: false, error: `${what}${where}: ${issue?.message ?? 'invalid'}` };
    },
  };
}

/** A decimal string, as timestamps are kept (DESIGN §2). */
const tsString = z.string().regex(/^\d+$/, 'expected a decimal timestamp');

const runningError: z.ZodType<RunningError, z.ZodTypeDef, unknown> = z
  .object({
    code: z.string(),
    message: z.string(),
    retryable: z.boolean(),
    hint: z.string().optional(),
    details: z.record(z.unknown()).optional(),
    time: z.string(),
    addr: z.string(),
  })
  .passthrough() as z.ZodType<RunningError, z.ZodTypeDef, unknown>; // `code` is checked as a string: an older catalogue's code is kept

const adminJobType = z.union([
  z.literal(AdminJobType.none),
  z.literal(AdminJobType.stop),
  z.literal(AdminJobType.resume),
  z.literal(AdminJobType.remove),
  z.literal(AdminJobType.finish),
]);

/** The changefeed.toml values as given; parsed into a ReplicaConfig where they are used. */
const replicaConfigInput = z.custom<ChangefeedInfo['config']>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'expected an object');

export const changefeedInfoRecord = record<ChangefeedInfo>(
  'changefeed info',
  z
    .object({
      'upstream-id': z.string(),
      namespace: z.string(),
      'changefeed-id': z.string(),
      'sink-uri': z.string(),
      'create-time': z.string(),
      'start-ts': tsString,
      'target-ts': tsString,
      'admin-job-type': adminJobType,
      config: replicaConfigInput,
      state: z.enum(FEED_STATES),
      error: runningError.nullable(),
      warning: runningError.nullable(),
      'creator-version': z.string(),
      epoch: z.string(),
    })
    .passthrough(),
);

export const changefeedStatusRecord = record<ChangefeedStatus>(
  'changefeed status',
  z
    .object({
      'checkpoint-ts': tsString,
      'checkpoint-time': z.number().optional(),
      'resolved-ts': tsString.optional(),
      'min-table-barrier-ts': tsString,
      'admin-job-type': adminJobType,
    })
    .passthrough(),
);

const taskPositionTable: z.ZodType<TaskPositionTable, z.ZodTypeDef, unknown> = z
  .object({ table: z.string(), checkpoint_ts: tsString, checkpoint_time: z.number().nullable() })
  .passthrough();

export const taskPositionRecord = record<TaskPosition>(
  'task position',
  z
    .object({
      'checkpoint-ts': tsString,
      'resolved-ts': tsString,
      'checkpoint-time': z.number().optional(),
      error: runningError.nullable().optional(),
      warning: runningError.nullable().optional(),
      'table-count': z.number().optional(),
      tables: z.array(taskPositionTable).optional(),
    })
    .passthrough(),
);

const encodedKey: z.ZodType<EncodedKey, z.ZodTypeDef, unknown> = z.array(z.tuple([z.enum(['n', 'b', 's', 'x', 'z']), z.string()]));

export const tableSnapshotRecord = record<TableSnapshotRecord>(
  'table snapshot progress',
  z
    .object({
      state: z.enum(['pending', 'copying', 'done']),
      'start-ts': tsString,
      chunks: z.array(z.object({ lower: encodedKey.nullable().optional(), upper: encodedKey.nullable(), ts: tsString }).passthrough()),
      rows: z.number(),
      method: z.enum(['chunks', 'one-pass']).optional(),
      'estimated-rows': z.number().optional(),
    })
    .passthrough(),
);

export const captureInfoRecord = record<CaptureInfo>(
  'capture info',
  z.object({ id: z.string(), address: z.string(), version: z.string(), pid: z.number(), 'start-timestamp': z.number() }).passthrough(),
);

export const upstreamRecord = record<UpstreamRecord>(
  'upstream',
  z.object({ id: z.string(), uri: z.string(), basename: z.string() }).passthrough(),
);

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Bytes of a key as JSON decoded into `rec`'s type; the message says what is wrong otherwise. */
export function decodeRecord<T>(rec: EtcdRecord<T>, bytes: Uint8Array): { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string } {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes)) as unknown;
  } catch (error) {
    return { ok: false, error: `${rec.what}: not JSON (${(error as Error).message})` };
  }
  return rec.decode(json);
}

/**
 * A patch of one record: `fn` gets the key's current value decoded (undefined: no key) and returns the new one
 * (undefined: delete the key). A current value that does not decode is left as it is, and the patch's whole
 * group is skipped (a reactor never overwrites a record it cannot read).
 */
export function recordPatch<T>(rec: EtcdRecord<T>, key: string, fn: (old: T | undefined) => T | undefined): DataPatch {
  return {
    key,
    apply(old) {
      let before: T | undefined;
      if (old !== undefined) {
        const decoded = decodeRecord(rec, old);
        if (!decoded.ok) throw new PatchSkip();
        before = decoded.value;
      }
      const next = fn(before);
      if (next === before) return { value: old, changed: false };
      const after = next === undefined ? undefined : encoder.encode(JSON.stringify(next));
      return { value: after, changed: !sameBytes(old, after) };
    },
  };
}

/** Deletes a key, whatever it holds. */
export function deletePatch(key: string): DataPatch {
  return { key, apply: (old) => ({ value: undefined, changed: old !== undefined }) };
}

export const patchChangefeedInfo = (key: string, fn: (old: ChangefeedInfo | undefined) => ChangefeedInfo | undefined): DataPatch => recordPatch(changefeedInfoRecord, key, fn);
export const patchChangefeedStatus = (key: string, fn: (old: ChangefeedStatus | undefined) => ChangefeedStatus | undefined): DataPatch => recordPatch(changefeedStatusRecord, key, fn);
export const patchTaskPosition = (key: string, fn: (old: TaskPosition | undefined) => TaskPosition | undefined): DataPatch => recordPatch(taskPositionRecord, key, fn);
export const patchTableSnapshot = (key: string, fn: (old: TableSnapshotRecord | undefined) => TableSnapshotRecord | undefined): DataPatch => recordPatch(tableSnapshotRecord, key, fn);

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
