import type { ColumnValue, PartitionDispatch, PartitionDispatcherFactory, RowChangedEvent } from 'tidemark/sink';
import { KafkaSinkError } from '../errors.js';
import { PARTITION_DISPATCHERS, type PartitionDispatcherName } from './rules.js';

/** Chooses a row's partition; every change of one key goes to one partition, so per-key order holds. */
export interface PartitionDispatcher {
  readonly name: string;
  dispatch(row: RowChangedEvent, partitions: number): number;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function hashString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h = Math.imul(h ^ (c & 0xff), FNV_PRIME);
    h = Math.imul(h ^ (c >>> 8), FNV_PRIME);
  }
  return h;
}

function hashValue(h: number, v: ColumnValue): number {
  h = Math.imul(h ^ 0x1f, FNV_PRIME); // separator, so ("ab","c") and ("a","bc") differ
  if (v === null) return Math.imul(h ^ 0xfe, FNV_PRIME);
  if (Buffer.isBuffer(v)) {
    for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v[i], FNV_PRIME);
    return h;
  }
  if (typeof v === 'string') return hashString(h, v);
  if (typeof v === 'boolean') return hashString(h, v ? '1' : '0');
  return hashString(h, String(v));
}

function tableHash(row: RowChangedEvent): number {
  return hashString(hashString(FNV_OFFSET, row.table.schema), row.table.table);
}

const modulo = (h: number, partitions: number): number => (h >>> 0) % partitions;

/** The image whose key decides: the new row for inserts and updates, the old one for deletes (as TiCDC). */
function image(row: RowChangedEvent): readonly ColumnValue[] {
  return (row.kind === 'delete' ? row.before : row.after) ?? row.before ?? [];
}

/** `table`: every row of a table to one partition (hash of schema and table). TiCDC's default. */
export class TablePartitionDispatcher implements PartitionDispatcher {
  readonly name = 'table' as const;
  dispatch(row: RowChangedEvent, partitions: number): number {
    return modulo(tableHash(row), partitions);
  }
}

/** `ts`: by commit ts, so one transaction's rows share a partition (per-key order only within it). */
export class TsPartitionDispatcher implements PartitionDispatcher {
  readonly name = 'ts' as const;
  dispatch(row: RowChangedEvent, partitions: number): number {
    return Number(row.commitTs % BigInt(partitions));
  }
}

/** `index-value`: by the primary-key values (tables without one fall back to `table`). */
export class IndexValuePartitionDispatcher implements PartitionDispatcher {
  readonly name = 'index-value' as const;
  dispatch(row: RowChangedEvent, partitions: number): number {
    const values = image(row);
    let h = tableHash(row);
    let any = false;
    for (let i = 0; i < row.columns.length; i++) {
      if (!row.columns[i].primaryKey) continue;
      any = true;
      h = hashValue(h, values[i] ?? null);
    }
    return any ? modulo(h, partitions) : modulo(tableHash(row), partitions);
  }
}

/** `columns = [...]`: by the named columns' values; a table without one of them is an error naming it. */
export class ColumnsPartitionDispatcher implements PartitionDispatcher {
  readonly name = 'columns' as const;
  private readonly positions = new WeakMap<RowChangedEvent['columns'], number[]>();
  constructor(readonly columns: readonly string[]) {}

  dispatch(row: RowChangedEvent, partitions: number): number {
    let positions = this.positions.get(row.columns);
    if (positions === undefined) {
      positions = this.columns.map((name) => {
        const at = row.columns.findIndex((c) => c.name.toLowerCase() === name.toLowerCase());
        if (at < 0) {
          throw new KafkaSinkError('ErrKafkaDispatcherInvalid', `partition dispatcher columns = [${this.columns.join(', ')}]: ${row.table.schema}.${row.table.table} has no column "${name}"`, {
            details: { table: `${row.table.schema}.${row.table.table}`, column: name },
          });
        }
        return at;
      });
      this.positions.set(row.columns, positions);
    }
    const values = image(row);
    let h = tableHash(row);
    for (const at of positions) h = hashValue(h, values[at] ?? null);
    return modulo(h, partitions);
  }
}

/** A plugin's dispatcher, checked on every row: a partition outside [0, partitions) is an error naming it. */
export class PluginPartitionDispatcher implements PartitionDispatcher {
  private readonly dispatchFn: PartitionDispatch;
  constructor(
    readonly name: string,
    factory: PartitionDispatcherFactory,
    columns: readonly string[] | undefined,
  ) {
    try {
      this.dispatchFn = factory.create(columns === undefined ? {} : { columns });
    } catch (error) {
      throw new KafkaSinkError('ErrKafkaDispatcherInvalid', `partition dispatcher "${name}" refused its rule: ${(error as Error).message}`, { details: { dispatcher: name } });
    }
  }

  dispatch(row: RowChangedEvent, partitions: number): number {
    const p = this.dispatchFn(row, partitions);
    if (!Number.isInteger(p) || p < 0 || p >= partitions) {
      throw new KafkaSinkError('ErrKafkaDispatcherInvalid', `partition dispatcher "${this.name}" chose partition ${String(p)} for a row of ${row.table.schema}.${row.table.table}; the topic has ${partitions} (0–${partitions - 1})`, {
        details: { dispatcher: this.name, partition: String(p), partitions },
      });
    }
    return p;
  }
}

export function createPartitionDispatcher(name: string | undefined, columns?: readonly string[], plugins?: ReadonlyMap<string, PartitionDispatcherFactory>): PartitionDispatcher {
  const plugin = name === undefined || (PARTITION_DISPATCHERS as readonly string[]).includes(name) ? undefined : plugins?.get(name);
  if (plugin !== undefined) return new PluginPartitionDispatcher(name!, plugin, columns);
  switch (name as PartitionDispatcherName | undefined) {
    case 'index-value':
      return new IndexValuePartitionDispatcher();
    case 'ts':
      return new TsPartitionDispatcher();
    case 'columns':
      return new ColumnsPartitionDispatcher(columns ?? []);
    case 'table':
    case 'default':
    case undefined:
      return new TablePartitionDispatcher();
  }
}
