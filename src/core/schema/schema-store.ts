import { promisify } from 'node:util';
import { gunzip as gunzipCb, gzip as gzipCb } from 'node:zlib';
import type { Etcd3 } from 'etcd3';
import { TidemarkError } from '../errors/index.js';
import { sleep } from '../lifecycle/abortable.js';
import type { Logger } from '../logger/logger.js';
import type { Ts } from '../model/ts.js';
import { upstreamHasFullRowMetadata } from '../upstream/preflight.js';
import { readDDLBetween, type ResumableReaderOptions } from '../upstream/resumable-reader.js';
import { changefeedSchemaKey } from '../orchestrator/etcd-keys.js';
import { SchemaStorage, type SchemaStorageJSON } from './schema-storage.js';

const gzip = promisify(gzipCb);
const gunzip = promisify(gunzipCb);

/** etcd refuses requests over 1.5 MiB (max-request-bytes): the gzip JSON goes in parts of at most this. */
const PART_BYTES = 1024 * 1024;

/** The manifest under the changefeed's schema key: which generation of parts holds the storage. */
interface Manifest {
  readonly generation: string;
  readonly parts: number;
  readonly bytes: number;
  readonly coveredFrom: string;
  readonly lastDDLTs: string;
}

/** Where a changefeed's schema storage survives restarts (the owner writes it; processors read it). */
export interface ChangefeedSchemaStore {
  load(namespace: string, id: string): Promise<SchemaStorage | undefined>;
  save(namespace: string, id: string, storage: SchemaStorage): Promise<void>;
  remove(namespace: string, id: string): Promise<void>;
}

/**
 * The schema storage of a changefeed in etcd: gzip JSON in parts of ≤ 1 MiB under a new generation
 * (`…/changefeed/schema/{id}/{generation}/{n}`), then the manifest at `…/changefeed/schema/{id}` switches
 * to it, then the old generation goes. A reader sees the old storage or the new one, never a mix.
 */
export class EtcdSchemaStore implements ChangefeedSchemaStore {
  private sequence = 0;

  constructor(
    private readonly client: Etcd3,
    private readonly clusterId: string,
  ) {}

  async load(namespace: string, id: string): Promise<SchemaStorage | undefined> {
    const key = changefeedSchemaKey(this.clusterId, namespace, id);
    const raw = await this.client.get(key).string();
    if (raw === null) return undefined;
    const manifest = JSON.parse(raw) as Manifest;
    const parts: Buffer[] = [];
    for (let i = 0; i < manifest.parts; i++) {
      const part = await this.client.get(`${key}/${manifest.generation}/${i}`).buffer();
      if (part === null) {
        throw new TidemarkError('ErrSchemaUnknown', `the schema storage of changefeed ${id} in etcd is incomplete (${key}/${manifest.generation}/${i} is missing)`, { retryable: true });
      }
      parts.push(part);
    }
    const json = JSON.parse((await gunzip(Buffer.concat(parts))).toString('utf8')) as SchemaStorageJSON;
    return SchemaStorage.fromJSON(json);
  }

  async save(namespace: string, id: string, storage: SchemaStorage): Promise<void> {
    const key = changefeedSchemaKey(this.clusterId, namespace, id);
    const data = await gzip(Buffer.from(JSON.stringify(storage.toJSON()), 'utf8'));
    const previous = await this.client.get(key).string();
    const generation = `${Date.now().toString(36)}-${(this.sequence++).toString(36)}`;
    const parts = Math.max(1, Math.ceil(data.length / PART_BYTES));
    for (let i = 0; i < parts; i++) await this.client.put(`${key}/${generation}/${i}`).value(data.subarray(i * PART_BYTES, (i + 1) * PART_BYTES));
    const manifest: Manifest = { generation, parts, bytes: data.length, coveredFrom: String(storage.coveredFrom), lastDDLTs: String(storage.lastDDL) };
    await this.client.put(key).value(JSON.stringify(manifest));
    if (previous !== null) {
      const old = (JSON.parse(previous) as Manifest).generation;
      if (old !== generation) await this.client.delete().prefix(`${key}/${old}/`);
    }
  }

  async remove(namespace: string, id: string): Promise<void> {
    const key = changefeedSchemaKey(this.clusterId, namespace, id);
    await this.client.delete().key(key);
    await this.client.delete().prefix(`${key}/`);
  }
}

/** Reading the DDL between a changefeed's start-ts and a new schema snapshot gives up after this long (ms). */
const DDL_SCAN_TIMEOUT_MS = 600_000;

/**
 * A new schema storage for a changefeed: a snapshot of the upstream's tables at a known binlog position,
 * extended back to `startTs` when that is earlier (the DDL in between is read with `reader`; a table it
 * changed is unknown before that DDL, see SchemaStorage.unknownTables).
 */
export async function takeChangefeedSchema(uri: string, reader: ResumableReaderOptions, startTs?: Ts): Promise<SchemaStorage> {
  const storage = await SchemaStorage.snapshot(uri, (from, to) => readDDLBetween(reader, from, to, DDL_SCAN_TIMEOUT_MS));
  if (startTs !== undefined) await extendChangefeedSchema(storage, reader, startTs);
  storage.loader = SchemaStorage.upstreamLoader(uri);
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
  target: { readonly namespace: string; readonly id: string; readonly upstreamUri: string },
  signal: AbortSignal,
  log: Logger,
): Promise<SchemaStorage | undefined> {
  if (await upstreamHasFullRowMetadata(target.upstreamUri)) return undefined;
  for (let waited = 0; ; waited += 200) {
    const storage = await store.load(target.namespace, target.id);
    if (storage !== undefined) {
      storage.loader = SchemaStorage.upstreamLoader(target.upstreamUri);
      storage.log = log;
      log.info('mounting rows with the changefeed schema storage (upstream without binlog_row_metadata=FULL)', { coveredFrom: String(storage.coveredFrom), lastDDLTs: String(storage.lastDDL) });
      return storage;
    }
    if (waited === 5000) log.info('waiting for the owner to write the changefeed schema storage');
    await sleep(200, signal);
  }
}
