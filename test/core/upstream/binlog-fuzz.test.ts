import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { TidemarkError } from '../../../src/core/errors/index.js';
import { makeTs } from '../../../src/core/model/ts.js';
import { Mounter } from '../../../src/core/pipeline/mounter/index.js';
import { rowOf } from '../../../src/core/pipeline/row-codec.js';
import { EventType, type RawBinlogEvent } from '../../../src/core/upstream/binlog-reader.js';
import { readTransactions } from '../../../src/core/upstream/transaction-reader.js';
import { seededRandom } from '../../helpers/seeded-random.js';

/** Mutated streams decoded per run; TIDEMARK_FUZZ_CASES for more, TIDEMARK_FUZZ_SEED for another sequence, TIDEMARK_FUZZ_DEBUG_CASE=N prints case N's stack. */
const CASES = Number(process.env['TIDEMARK_FUZZ_CASES'] ?? 4000);
const SEED = Number(process.env['TIDEMARK_FUZZ_SEED'] ?? 20261205);

/** The real binlog of test/fixtures/binlog/record-corpus.ts: every event the decoders see, as the upstream wrote it. */
function corpus(): RawBinlogEvent[] {
  const bytes = readFileSync(new URL('../../fixtures/binlog/corpus.bin', import.meta.url));
  const events: RawBinlogEvent[] = [];
  for (let o = 0, pos = 4; o < bytes.length; ) {
    const type = bytes.readUInt8(o);
    const timestamp = bytes.readUInt32LE(o + 1);
    const length = bytes.readUInt32LE(o + 5);
    const body = bytes.subarray(o + 9, o + 9 + length);
    o += 9 + length;
    events.push({ type, timestamp, serverId: 1, flags: 0, file: 'mysql-bin.000001', fileSeq: 1, startPos: pos, endPos: pos + 19 + length + 4, body });
    pos += 19 + length + 4;
  }
  return events;
}

const KNOWN_TYPES = [EventType.TABLE_MAP, EventType.QUERY, EventType.XID, EventType.WRITE_ROWS_V1, EventType.UPDATE_ROWS_V1, EventType.DELETE_ROWS_V1, EventType.WRITE_ROWS_V2, EventType.UPDATE_ROWS_V2, EventType.DELETE_ROWS_V2, EventType.MARIADB_GTID];

/** One mutated copy of the stream: 1-4 mutations (truncation, flipped bytes, extreme lengths, other or unknown types, events dropped, repeated, grown). */
function mutate(events: readonly RawBinlogEvent[], random: () => number): { events: RawBinlogEvent[]; what: string[] } {
  const out = events.map((e) => ({ ...e, body: Buffer.from(e.body) }));
  const what: string[] = [];
  const pick = (n: number): number => Math.floor(random() * n);
  // mostly the events the decoders parse field by field
  const target = (): number => {
    const interesting = out.map((e, i) => [e, i] as const).filter(([e]) => e.type !== EventType.XID && e.type !== EventType.MARIADB_GTID);
    return random() < 0.85 && interesting.length > 0 ? interesting[pick(interesting.length)][1] : pick(out.length);
  };
  for (let m = 1 + pick(4); m > 0; m--) {
    const i = target();
    const e = out[i];
    const op = pick(8);
    switch (op) {
      case 0: {
        const n = pick(e.body.length + 1);
        out[i] = { ...e, body: e.body.subarray(0, n) };
        what.push(`#${i} type ${e.type} truncated to ${n} of ${e.body.length}`);
        break;
      }
      case 1: {
        const flips = 1 + pick(8);
        for (let f = 0; f < flips && e.body.length > 0; f++) e.body[pick(e.body.length)] ^= 1 << pick(8);
        what.push(`#${i} type ${e.type} ${flips} bits flipped`);
        break;
      }
      case 2: {
        if (e.body.length === 0) break;
        const values = [0, 0xff, 0x7f, 0x80, 0xfb, 0xfc, 0xfd, 0xfe];
        const at = pick(e.body.length);
        const width = Math.min([1, 2, 4][pick(3)], e.body.length - at);
        for (let b = 0; b < width; b++) e.body[at + b] = values[pick(values.length)];
        what.push(`#${i} type ${e.type} ${width} byte(s) at ${at} set to extremes`);
        break;
      }
      case 3: {
        const type = random() < 0.5 ? KNOWN_TYPES[pick(KNOWN_TYPES.length)] : pick(256);
        out[i] = { ...e, type };
        what.push(`#${i} type ${e.type} retyped ${type}`);
        break;
      }
      case 4:
        out.splice(i, 1);
        what.push(`#${i} type ${e.type} dropped`);
        break;
      case 5:
        out.splice(i, 0, { ...e, body: Buffer.from(e.body) });
        what.push(`#${i} type ${e.type} repeated`);
        break;
      case 6: {
        const extra = Buffer.alloc(1 + pick(64));
        for (let b = 0; b < extra.length; b++) extra[b] = pick(256);
        out[i] = { ...e, body: Buffer.concat([e.body, extra]) };
        what.push(`#${i} type ${e.type} ${extra.length} random bytes appended`);
        break;
      }
      default: {
        // a TABLE_MAP's column types and metadata: the bytes after the names
        if (e.type !== EventType.TABLE_MAP || e.body.length < 12) break;
        const at = 8 + pick(e.body.length - 8);
        e.body[at] = [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 15, 16, 17, 18, 19, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255][pick(27)];
        what.push(`#${i} TABLE_MAP byte ${at} set to a column type`);
      }
    }
  }
  return { events: out, what };
}

/** The decoders in the order a capture runs them: transactions, TABLE_MAPs, rows located, then mounted (values decoded). */
async function decode(events: readonly RawBinlogEvent[]): Promise<number> {
  const mounter = new Mounter();
  const source = {
    mariadb: true,
    [Symbol.asyncIterator]: async function* (): AsyncGenerator<RawBinlogEvent> {
      for (const e of events) yield await Promise.resolve(e);
    },
  };
  let rows = 0;
  for await (const u of readTransactions(source)) {
    if (u.kind !== 'rows') continue;
    const version = mounter.versionOf(u.layout.map);
    for (let i = 0; i < u.layout.ends.length; i++) {
      mounter.mount({ schema: u.layout.map.schema, table: u.layout.map.table, tableId: Number(u.layout.map.tableId) }, makeTs(1, 4), u.seq + i, rowOf(u.layout, i, version));
      rows++;
    }
  }
  return rows;
}

describe('binlog decoders under hostile input (mutated real binlog streams)', () => {
  it('the unmutated corpus decodes: every row of the type matrix mounts', async () => {
    const rows = await decode(corpus());
    assert.ok(rows > 200, `${rows} rows decoded from the corpus`);
  });

  it(`${CASES} mutated streams (seed ${SEED}): each decodes or ends in a typed error; none throws anything else or hangs`, async () => {
    const events = corpus();
    const random = seededRandom(SEED);
    const outcomes = new Map<string, number>();
    const findings: string[] = [];
    let slowest = 0;
    for (let c = 0; c < CASES; c++) {
      const { events: mutated, what } = mutate(events, random);
      const started = performance.now();
      let outcome: string;
      try {
        await decode(mutated);
        outcome = 'decoded';
      } catch (error) {
        if (error instanceof TidemarkError) outcome = `${error.code}${error.retryable ? ' (retryable)' : ''}`;
        else {
          outcome = 'untyped';
          if (process.env['TIDEMARK_FUZZ_DEBUG_CASE'] === String(c)) console.log((error as Error).stack);
          if (findings.length < 12) findings.push(`case ${c} [${what.join('; ')}]: ${(error as Error).name}: ${(error as Error).message}\n    ${(error as Error).stack?.split('\n').slice(1, 3).join('\n    ')}`);
        }
      }
      const took = performance.now() - started;
      if (took > 300) console.log(`# slow case ${c} (${took.toFixed(0)} ms): ${what.join("; ")} -> ${outcome}`);
      slowest = Math.max(slowest, took);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    console.log(`# ${CASES} cases, seed ${SEED}: ${JSON.stringify(Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])))}; slowest case ${slowest.toFixed(1)} ms`);
    assert.deepEqual(findings, [], `untyped errors (${outcomes.get('untyped') ?? 0} cases):\n${findings.join('\n')}`);
    assert.ok(slowest < 2000, `no case takes seconds (slowest ${slowest.toFixed(0)} ms)`);
    assert.ok((outcomes.get('ErrBinlogCorrupt') ?? 0) > 0, 'some mutations are caught as corrupt events');
  });
});
