import { promisify } from 'node:util';
import { gunzip as gunzipCb, gzip as gzipCb } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import type { Etcd3, IOperation, PutBuilder } from 'etcd3';
import { TidemarkError } from '../errors/index.js';
import type { Ts } from '../model/ts.js';
import { SchemaStorage, type SchemaStorageJSON } from '../schema/schema-storage.js';
import type { AppliedDDL, ChangefeedSchemaStore } from '../schema/schema-store.js';
import { changefeedSchemaKey } from './etcd-keys.js';

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

/** The whole storage is written again after this many DDL records... */
const MAX_DDL_RECORDS = 512;
/** ...or when the records take more bytes than this, or than the whole storage's gzip. */
const MIN_DDL_RECORD_BYTES = 256 * 1024;

/** What this store last wrote or read for a changefeed: where its DDL records go. */
interface Written {
  /** The manifest's exact value: a record is written only while it is still the manifest (no other writer saved). */
  readonly manifest: string;
  readonly generation: string;
  readonly bytes: number;
  records: number;
  recordBytes: number;
}

const ddlRecordName = (ts: Ts): string => `ddl/${ts.toString(16).padStart(16, '0')}`;

/**
 * The schema storage of a changefeed in etcd: gzip JSON in parts of ≤ 1 MiB under a new generation
 * (`…/changefeed/schema/{id}/{generation}/{n}`), then the manifest at `…/changefeed/schema/{id}` switches
 * to it, then the old generation goes. The DDL applied after it are records of their own next to the parts
 * (`…/{generation}/ddl/{ts, hex}`), replayed on load, until the whole storage is written again. A load reads the
 * parts and records at the manifest's etcd revision, so it sees one storage, never a mix.
 */
export class EtcdSchemaStore implements ChangefeedSchemaStore {
  private sequence = 0;
  private readonly written = new Map<string, Written>();
  /** What was written, for benchmarks and tests: whole storages, DDL records, and bytes put in all. */
  readonly stats = { saves: 0, records: 0, bytes: 0 };

  constructor(
    private readonly client: Etcd3,
    private readonly clusterId: string,
  ) {}

  async load(namespace: string, id: string): Promise<SchemaStorage | undefined> {
    const key = changefeedSchemaKey(this.clusterId, namespace, id);
    const head = await this.client.get(key).exec();
    const kv = head.kvs[0];
    if (kv === undefined) return undefined;
    const raw = kv.value.toString('utf8');
    const manifest = JSON.parse(raw) as Manifest;
    const base = `${key}/${manifest.generation}/`;
    // the parts and records at the manifest's revision: a writer switching generations meanwhile changes nothing
    const all = await this.client.getAll().prefix(base).revision(head.header.revision).buffers();
    const parts: Buffer[] = [];
    for (let i = 0; i < manifest.parts; i++) {
      const part = all[`${base}${i}`];
      if (part === undefined) {
        throw new TidemarkError('ErrSchemaUnknown', `the schema storage of changefeed ${id} in etcd is incomplete (${base}${i} is missing)`, { retryable: true });
      }
      parts.push(part);
    }
    const storage = SchemaStorage.fromJSON(JSON.parse((await gunzip(Buffer.concat(parts))).toString('utf8')) as SchemaStorageJSON);
    const records = Object.keys(all).filter((k) => k.startsWith(`${base}ddl/`)).sort();
    let recordBytes = 0;
    for (const k of records) {
      const { schema, query } = JSON.parse(all[k].toString('utf8')) as { schema: string; query: string };
      storage.applyDDL(BigInt(`0x${k.slice(base.length + 4)}`), schema, query);
      recordBytes += all[k].length;
    }
    this.written.set(key, { manifest: raw, generation: manifest.generation, bytes: manifest.bytes, records: records.length, recordBytes });
    return storage;
  }

  async save(namespace: string, id: string, storage: SchemaStorage): Promise<void> {
    const staged = await this.stage(namespace, id, storage);
    await staged.manifest.exec();
    await staged.settle(true);
  }

  /**
   * Writes the storage's parts under a new generation and returns the manifest's put for the caller's own
   * transaction: `changefeed create` commits it with the changefeed's info key, so of two creates of one id only
   * the one that wins switches the manifest. `settle(committed)` then deletes what is not needed: the
   * generations that were there before (a storage left by an earlier changefeed of the id) when committed, this
   * one when not. Generations written after the stage (the new changefeed's owner) are never touched.
   */
  async stage(namespace: string, id: string, storage: SchemaStorage): Promise<{ manifest: PutBuilder; settle: (committed: boolean) => Promise<void> }> {
    const key = changefeedSchemaKey(this.clusterId, namespace, id);
    const dropStale = await this.staleGenerations(key);
    const data = await gzip(Buffer.from(JSON.stringify(storage.toJSON()), 'utf8'));
    const generation = `${Date.now().toString(36)}-${(this.sequence++).toString(36)}-${randomBytes(3).toString('hex')}`;
    const parts = Math.max(1, Math.ceil(data.length / PART_BYTES));
    for (let i = 0; i < parts; i++) await this.client.put(`${key}/${generation}/${i}`).value(data.subarray(i * PART_BYTES, (i + 1) * PART_BYTES));
    const manifest = JSON.stringify({ generation, parts, bytes: data.length, coveredFrom: String(storage.coveredFrom), lastDDLTs: String(storage.lastDDL) } satisfies Manifest);
    this.stats.saves++;
    this.stats.bytes += data.length + manifest.length;
    return {
      manifest: this.client.put(key).value(manifest),
      settle: async (committed) => {
        if (!committed) {
          await this.client.delete().prefix(`${key}/${generation}/`);
          return;
        }
        this.written.set(key, { manifest, generation, bytes: data.length, records: 0, recordBytes: 0 });
        await dropStale();
      },
    };
  }

  /**
   * For a changefeed created without a schema storage (its owner takes one when it starts it): the delete of a
   * manifest left by an earlier changefeed of the id, for the caller's transaction (the owner must not load that
   * one), and `settle(committed)` deleting that changefeed's generations once committed. Generations written
   * after this call (the new changefeed's owner) are never touched.
   */
  async vacate(namespace: string, id: string): Promise<{ manifest: IOperation; settle: (committed: boolean) => Promise<void> }> {
    const key = changefeedSchemaKey(this.clusterId, namespace, id);
    const dropStale = await this.staleGenerations(key);
    return {
      manifest: this.client.delete().key(key),
      settle: async (committed) => {
        if (!committed) return;
        this.written.delete(key);
        await dropStale();
      },
    };
  }

  /** The generations under `key` now, and a delete of them for later (those written after this call stay). */
  private async staleGenerations(key: string): Promise<() => Promise<void>> {
    const stale = new Set((await this.client.getAll().prefix(`${key}/`).keys()).map((k) => k.slice(key.length + 1).split('/')[0]));
    return async () => {
      for (const old of stale) await this.client.delete().prefix(`${key}/${old}/`);
    };
  }

  async appendDDL(namespace: string, id: string, storage: SchemaStorage, ddl: AppliedDDL): Promise<void> {
    const key = changefeedSchemaKey(this.clusterId, namespace, id);
    const written = this.written.get(key);
    const record = JSON.stringify({ schema: ddl.schema, query: ddl.query });
    if (written === undefined || written.records >= MAX_DDL_RECORDS || written.recordBytes + record.length > Math.max(MIN_DDL_RECORD_BYTES, written.bytes)) {
      await this.save(namespace, id, storage);
      return;
    }
    const result = await this.client
      .if(key, 'Value', '==', written.manifest)
      .then(this.client.put(`${key}/${written.generation}/${ddlRecordName(ddl.ts)}`).value(record))
      .commit();
    if (!result.succeeded) {
      // another owner wrote the storage since: ours, which has every DDL up to this one, replaces it
      await this.save(namespace, id, storage);
      return;
    }
    written.records++;
    written.recordBytes += record.length;
    this.stats.records++;
    this.stats.bytes += record.length;
  }

  async remove(namespace: string, id: string): Promise<void> {
    const key = changefeedSchemaKey(this.clusterId, namespace, id);
    this.written.delete(key);
    await this.client.delete().key(key);
    await this.client.delete().prefix(`${key}/`);
  }
}
