import { KafkaSinkError } from '../errors.js';
import { validTopicName } from '../config.js';

/**
 * One `[[sink.dispatchers]]` rule of changefeed.toml (TiCDC): tables chosen by table-filter matchers get a
 * topic expression and a partition dispatcher. The core parses the section (src/core/config/replica-config.ts)
 * and hands it to the plugin in `SinkContext.sinkConfig.dispatchers`; `parseDispatchRules` validates it here.
 */
export interface DispatchRule {
  readonly matcher: readonly string[];
  /** A topic expression: a fixed topic, or one with {schema} and optionally {table}. */
  readonly topic: string | undefined;
  /** A built-in dispatcher, or one a plugin ships (`SinkContext.dispatchers`). */
  readonly partition: string | undefined;
  /** index-value: the index whose values are hashed; only the primary key is known to the sink. */
  readonly index: string | undefined;
  /** columns: the columns whose values are hashed. */
  readonly columns: readonly string[] | undefined;
}

export const PARTITION_DISPATCHERS = ['default', 'index-value', 'ts', 'table', 'columns'] as const;
export type PartitionDispatcherName = (typeof PARTITION_DISPATCHERS)[number];
const RULE_KEYS = ['matcher', 'topic', 'partition', 'index', 'columns'];

const TOPIC_EXPRESSION = /^[A-Za-z0-9._-]*\{schema\}(?:[A-Za-z0-9._-]*\{table\})?[A-Za-z0-9._-]*$/;

/** Whether a topic expression is valid: a Kafka topic name, or `[prefix]{schema}[middle][{table}][suffix]`. */
export function validTopicExpression(expression: string): boolean {
  if (expression.includes('{')) return TOPIC_EXPRESSION.test(expression);
  return validTopicName(expression);
}

function bad(index: number, key: string, value: unknown, allowed: string): KafkaSinkError {
  return new KafkaSinkError('ErrKafkaDispatcherInvalid', `invalid ${key} ${JSON.stringify(value)} in sink.dispatchers[${index}]: ${allowed}`, { details: { rule: index, key } });
}

/**
 * Validates `[sink] dispatchers` (an array of rules as TOML/JSON gives them) into frozen rules. `plugins` are the
 * names of partition dispatchers installed plugins ship; they are allowed besides the built-in ones.
 */
export function parseDispatchRules(raw: unknown, plugins: readonly string[] = []): readonly DispatchRule[] {
  const allowed = [...PARTITION_DISPATCHERS, ...plugins.filter((p) => !(PARTITION_DISPATCHERS as readonly string[]).includes(p))];
  if (raw === undefined || raw === null) return Object.freeze([]);
  if (!Array.isArray(raw)) throw new KafkaSinkError('ErrKafkaDispatcherInvalid', `sink.dispatchers must be an array of rules ({matcher, topic, partition, index, columns}), got ${typeof raw}`);
  return Object.freeze(
    raw.map((item: unknown, i): DispatchRule => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw bad(i, 'rule', item, 'a table {matcher = [...], topic = "...", partition = "..."}');
      const rule = item as Record<string, unknown>;
      for (const key of Object.keys(rule)) {
        if (!RULE_KEYS.includes(key)) throw new KafkaSinkError('ErrKafkaDispatcherInvalid', `unknown key "${key}" in sink.dispatchers[${i}]; allowed: ${RULE_KEYS.join(', ')}`, { details: { rule: i, key } });
      }
      const matcher = rule['matcher'];
      if (!Array.isArray(matcher) || matcher.length === 0 || !matcher.every((m) => typeof m === 'string' && m.trim() !== '')) {
        throw bad(i, 'matcher', matcher, 'a non-empty array of table filters such as ["db.*", "!db.tmp_*"]');
      }
      for (const m of matcher as string[]) compileFilter(m, i);
      const topic = rule['topic'];
      if (topic !== undefined && (typeof topic !== 'string' || !validTopicExpression(topic))) {
        throw bad(i, 'topic', topic, 'a topic name (A-Z a-z 0-9 . _ -) or an expression [prefix]{schema}[middle][{table}][suffix]');
      }
      const columns = rule['columns'];
      if (columns !== undefined && (!Array.isArray(columns) || columns.length === 0 || !columns.every((c) => typeof c === 'string' && c !== ''))) {
        throw bad(i, 'columns', columns, 'a non-empty array of column names');
      }
      let partition = rule['partition'];
      if (partition === 'rowid') partition = 'index-value'; // TiCDC's old name
      if (partition === undefined && columns !== undefined) partition = 'columns';
      if (partition !== undefined && (typeof partition !== 'string' || !allowed.includes(partition))) {
        throw bad(i, 'partition', partition, `one of ${allowed.join(', ')} (plugins add more: \`cdc plugins install\`)`);
      }
      const builtIn = partition === undefined || (PARTITION_DISPATCHERS as readonly string[]).includes(partition);
      if (partition === 'columns' && columns === undefined) throw bad(i, 'columns', columns, 'partition = "columns" needs columns = ["col", ...]');
      if (builtIn && partition !== 'columns' && columns !== undefined) throw bad(i, 'partition', partition, 'columns = [...] goes with partition = "columns" (or a plugin dispatcher that takes them)');
      const index = rule['index'];
      if (index !== undefined && (typeof index !== 'string' || index.toLowerCase() !== 'primary')) {
        throw bad(i, 'index', index, 'only "PRIMARY": the sink knows the primary key, not secondary indexes; use columns = [...] for others');
      }
      if (index !== undefined && partition !== 'index-value') throw bad(i, 'index', index, 'index goes with partition = "index-value"');
      return Object.freeze({
        matcher: Object.freeze([...(matcher as string[])]),
        topic: topic,
        partition: partition,
        index: index,
        columns: columns === undefined ? undefined : Object.freeze([...(columns as string[])]),
      });
    }),
  );
}

interface CompiledFilter {
  readonly negated: boolean;
  readonly schema: RegExp;
  readonly table: RegExp;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) throw new Error('unclosed [');
      re += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < glob.length) re += `\\${glob[++i]}`;
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'i');
}

/** A TiCDC table-filter rule: `schema.table` with * ? [..] wildcards, backquoted names, `!` to exclude. */
export function compileFilter(rule: string, index = 0): CompiledFilter {
  let text = rule.trim();
  const negated = text.startsWith('!');
  if (negated) text = text.slice(1);
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (const c of text) {
    if (c === '`') quoted = !quoted;
    else if (c === '.' && !quoted) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') throw bad(index, 'matcher', rule, 'table filters of the form schema.table, such as "db.*" or "*.orders"');
  try {
    return { negated, schema: globToRegExp(parts[0]), table: globToRegExp(parts[1]) };
  } catch (error) {
    throw bad(index, 'matcher', rule, `a valid wildcard pattern (${(error as Error).message})`);
  }
}

/** Whether a table matches a rule's matcher list (the last filter that matches decides, as TiCDC's table filter). */
export function matchesFilters(filters: readonly CompiledFilter[], schema: string, table: string): boolean {
  let matched = false;
  for (const f of filters) if (f.schema.test(schema) && f.table.test(table)) matched = !f.negated;
  return matched;
}
