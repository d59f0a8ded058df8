import { isDeepStrictEqual } from 'node:util';
import type { TableMap } from '../../upstream/events.js';
import type { RowsLayout } from '../../upstream/rows.js';
import { decodedRowBytes, markRowDecoded, rowOf, rowSharers, type DecodedRow, type SortedRow } from '../row-codec.js';

/**
 * The TABLE_MAP versions rows carry to the mounter (a small number in the row's header, also through spill
 * files). A TABLE_MAP read again with the same content (another read of the binlog: a reader on its own, a read
 * started again) keeps the version it had, so the versions grow with the tables' definitions, not with reads.
 */
export class TableMapVersions {
  /** The TABLE_MAP of each version (`maps[v - 1]`), and each one's version. */
  private readonly maps: TableMap[] = [];
  private readonly versions = new Map<TableMap, number>();
  /**
   * TABLE_MAPs of other reads equal to a version's (held weakly: they go with their read; few, as reads start
   * again rarely, so the collector's work on weak keys stays small).
   */
  private readonly equals = new WeakMap<TableMap, number>();
  /** The newest version of each table, by schema and table name. */
  private readonly newest = new Map<string, number>();

  versionOf(map: TableMap): number {
    let version = this.versions.get(map) ?? this.equals.get(map);
    if (version !== undefined) return version;
    const key = `${map.schema}\u0000${map.table}`;
    const newest = this.newest.get(key);
    if (newest !== undefined && isDeepStrictEqual(this.maps[newest - 1], map)) {
      this.equals.set(map, newest);
      return newest;
    }
    this.maps.push(map);
    version = this.maps.length;
    this.versions.set(map, version);
    this.newest.set(key, version);
    return version;
  }

  /** The TABLE_MAP of a version (the first one read with that content). */
  mapOf(version: number): TableMap | undefined {
    return this.maps[version - 1];
  }
}

/** A row's decoded images kept for the other changefeeds that hold the row. */
interface KeptDecode {
  readonly decoded: DecodedRow;
  /** Changefeeds still to take it. */
  left: number;
  readonly bytes: number;
}

/**
 * Decoded rows kept for other changefeeds, at most (estimated as the memory quota reckons mounted rows): about
 * 2,000 narrow rows. Changefeeds at the head mount the same rows within milliseconds of each other, well inside
 * it; for changefeeds further apart, keeping more would only keep decoded rows alive long enough for the garbage
 * collector to move them to the old generation, which costs more than decoding them again.
 */
export const DEFAULT_SHARED_DECODE_BYTES = 1024 * 1024;

/**
 * What the processors of one capture share of the rows they read from one upstream (the log service's, one per
 * upstream; a processor on its own has one of its own, which shares nothing):
 *
 * - the TABLE_MAP versions (TableMapVersions);
 * - the rows of a rows event the shared binlog read gave to several changefeeds (`sharersOf`): built once, as one
 *   SortedRow each that every changefeed's transaction buffer and sorter hold (the row's commit time, written at the
 *   commit, is the same for all of them);
 * - such a row's decoded images: the first changefeed to mount the row keeps them for the others, which take them
 *   instead of decoding the row again. They are kept until every other sharer took them, or, oldest first, while
 *   more than `maxDecodedBytes` are kept: a changefeed far behind the others decodes its rows itself (and keeps
 *   nothing), so the memory stays bounded whatever the distance between changefeeds.
 *
 * The decoded images are shared by the RowChangedEvents of several changefeeds: sinks read them, never change them
 * (the sink contract's `readonly` arrays).
 */
export class SharedRows {
  readonly versions = new TableMapVersions();
  /** The rows of a shared rows event, until every other sharer took them (or the event is gone). */
  private readonly built = new WeakMap<RowsLayout, { readonly rows: readonly SortedRow[]; left: number }>();
  private readonly kept = new Map<SortedRow, KeptDecode>();
  private keptBytes = 0;
  /** Rows mounted with images another changefeed decoded, and rows decoded (for the metrics and tests). */
  readonly decodes = { shared: 0, decoded: 0 };

  constructor(
    /** How many changefeeds the shared binlog read gave a rows event to (1 for any other). */
    private readonly sharersOf: (layout: RowsLayout) => number = () => 1,
    private readonly maxDecodedBytes = DEFAULT_SHARED_DECODE_BYTES,
  ) {}

  /** Decoded images held for other changefeeds (estimated bytes). */
  get keptDecodedBytes(): number {
    return this.keptBytes;
  }

  /** The rows of a rows event as the sorter's payloads: one set for every changefeed the shared read gave it to. */
  rowsOf(layout: RowsLayout): readonly SortedRow[] {
    const sharers = this.sharersOf(layout);
    if (sharers > 1) {
      const built = this.built.get(layout);
      if (built !== undefined) {
        if (--built.left === 0) this.built.delete(layout);
        return built.rows;
      }
    }
    const version = this.versions.versionOf(layout.map);
    const rows = new Array<SortedRow>(layout.ends.length);
    for (let i = 0; i < rows.length; i++) rows[i] = rowOf(layout, i, version, sharers);
    if (sharers > 1) this.built.set(layout, { rows, left: sharers - 1 });
    return rows;
  }

  /** The decoded images of a shared row another changefeed mounted, if they are still kept. */
  take(row: SortedRow): DecodedRow | undefined {
    if (rowSharers(row) < 2) return undefined;
    const kept = this.kept.get(row);
    if (kept === undefined) return undefined;
    if (--kept.left === 0) {
      this.kept.delete(row);
      this.keptBytes -= kept.bytes;
    }
    this.decodes.shared++;
    return kept.decoded;
  }

  /**
   * A row was decoded: a shared row's images decoded for the first time are kept for the changefeeds that have still
   * to mount it (decoded again, they were let go already: the others took them, or the ones still to take them are
   * far behind, and would only push out rows that others near the head will take).
   */
  decoded(row: SortedRow, decoded: DecodedRow): void {
    this.decodes.decoded++;
    const sharers = rowSharers(row);
    if (sharers < 2 || markRowDecoded(row)) return;
    const bytes = decodedRowBytes(row);
    if (bytes > this.maxDecodedBytes) return;
    this.kept.set(row, { decoded, left: sharers - 1, bytes });
    this.keptBytes += bytes;
    while (this.keptBytes > this.maxDecodedBytes) {
      const oldest = this.kept.entries().next().value;
      if (oldest === undefined) break;
      this.kept.delete(oldest[0]);
      this.keptBytes -= oldest[1].bytes;
    }
  }
}
