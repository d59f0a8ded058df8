import { sleep } from '../lifecycle/abortable.js';
import type { Logger } from '../logger/logger.js';
import type { Ts } from '../model/ts.js';
import type { Upstream } from '../upstream/upstream.js';
import { readDDLBetween, type ResumableReaderOptions } from '../upstream/resumable-reader.js';
import { SchemaStorage } from './schema-storage.js';

/** A DDL as the schema storage applied it (SchemaStorage.applyDDL's arguments). */
export interface AppliedDDL {
  readonly ts: Ts;
  readonly schema: string;
  readonly query: string;
}

/** Where a changefeed's schema storage survives restarts (the owner writes it; processors read it). */
export interface ChangefeedSchemaStore {
  load(namespace: string, id: string): Promise<SchemaStorage | undefined>;
  /** Writes the whole storage. */
  save(namespace: string, id: string, storage: SchemaStorage): Promise<void>;
  /**
   * Records a DDL just applied to `storage`, which this store loaded or saved: a load gives the storage with
   * the DDL applied. Writes only the DDL's own record, or the whole storage when the records have grown too
   * many or too big next to it (so a burst of DDL writes O(n) bytes, not O(n²)).
   */
  appendDDL(namespace: string, id: string, storage: SchemaStorage, ddl: AppliedDDL): Promise<void>;
  remove(namespace: string, id: string): Promise<void>;
}

/** Reading the DDL between a changefeed's start-ts and a new schema snapshot gives up after this long (ms). */
const DDL_SCAN_TIMEOUT_MS = 600_000;

/**
 * A new schema storage for a changefeed: a snapshot of the upstream's tables at a known binlog position,
 * extended back to `startTs` when that is earlier (the DDL in between is read with `reader`; a table it
 * changed is unknown before that DDL, see SchemaStorage.unknownTables).
 */
export async function takeChangefeedSchema(upstream: Upstream, reader: ResumableReaderOptions, startTs?: Ts): Promise<SchemaStorage> {
  const storage = await SchemaStorage.snapshot(upstream, (from, to) => readDDLBetween(reader, from, to, DDL_SCAN_TIMEOUT_MS));
  if (startTs !== undefined) await extendChangefeedSchema(storage, reader, startTs);
  storage.loader = SchemaStorage.upstreamLoader(upstream);
  return storage;
}

/**
 * Makes `storage` answer from `startTs` on when it starts later: the DDL in between is read with `reader`, and a
 * table it changed is unknown before that DDL. Returns whether the storage changed.
 */
export async function extendChangefeedSchema(storage: SchemaStorage, reader: ResumableReaderOptions, startTs: Ts): Promise<boolean> {
  if (startTs >= storage.coveredFrom) return false;
  storage.extendBack(startTs, await readDDLBetween(reader, startTs, storage.coveredFrom, DDL_SCAN_TIMEOUT_MS));
  return true;
}

/**
 * The schema storage a processor of changefeed `id` mounts rows with: undefined when the upstream's row events
 * carry full metadata; otherwise the one the owner keeps in etcd (waited for until the owner has written it),
 * reading a table again from the upstream when a DDL could not be followed.
 */
export async function changefeedSchemaStorage(
  store: ChangefeedSchemaStore,
  target: { readonly namespace: string; readonly id: string; readonly upstream: Upstream },
  signal: AbortSignal,
  log: Logger,
): Promise<SchemaStorage | undefined> {
  if (await target.upstream.hasFullRowMetadata()) return undefined;
  for (let waited = 0; ; waited += 200) {
    const storage = await store.load(target.namespace, target.id);
    if (storage !== undefined) {
      storage.loader = SchemaStorage.upstreamLoader(target.upstream);
      storage.log = log;
      log.info('mounting rows with the changefeed schema storage (upstream without binlog_row_metadata=FULL)', { coveredFrom: String(storage.coveredFrom), lastDDLTs: String(storage.lastDDL) });
      return storage;
    }
    if (waited === 5000) log.info('waiting for the owner to write the changefeed schema storage');
    await sleep(200, signal);
  }
}
