import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Kafka Connect's own JsonConverter (org.apache.kafka:connect-json from Maven Central, at the Kafka version of
 * scripts/kafka/pom.xml, resolved by scripts/kafka/connect-json.sh), run by scripts/kafka/connect-json/JsonConverterCheck.java
 * with the machine's Java: it reads records as a Connect sink with schemas.enable=true would, each key and value
 * against its schema, required fields present, bytes valid base64, structs valid.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const checker = `${root}scripts/kafka/connect-json/JsonConverterCheck.java`;
let classpath: string | undefined;

export interface ConnectRecord {
  readonly topic: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** One line per record: "ok <key schema> <value schema> <value fields>" or "error …"; status 1 if any was refused. */
export function jsonConverter(records: readonly ConnectRecord[]): { status: number | null; lines: string[] } {
  classpath ??= readFileSync(execFileSync('bash', [`${root}scripts/kafka/connect-json.sh`], { encoding: 'utf8' }).trim(), 'utf8').trim();
  const input = records.map((r) => `${r.topic}\t${r.key === null ? '-' : r.key.toString('base64')}\t${r.value === null ? '-' : r.value.toString('base64')}\n`).join('');
  const run = spawnSync('java', ['-cp', classpath, checker], { input, encoding: 'utf8', timeout: 300_000, maxBuffer: 256 * 1024 * 1024 });
  if (run.error !== undefined) throw run.error;
  if (run.status !== 0 && run.status !== 1) throw new Error(`JsonConverterCheck exited ${run.status}: ${run.stderr.slice(-2000)}`);
  return { status: run.status, lines: run.stdout.trim().split('\n').filter((l) => l !== '') };
}
