import { TidemarkError } from '../errors/index.js';

/** Schemas that are never replicated, whatever the rules say (TiCDC). */
export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys', 'metrics_schema', 'tidb_cdc', 'lightning_task_info'];

interface Rule {
  readonly negated: boolean;
  readonly schema: RegExp;
  readonly table: RegExp;
}

/**
 * TiDB's table-filter syntax (`db.*`, `*.t?`, `!db.tmp*`, `db[0-9].tbl`, backquoted names): the last rule
 * that matches a table decides; a table no rule matches is not replicated.
 */
export class TableFilter {
  private readonly rules: readonly Rule[];

  constructor(
    readonly source: readonly string[],
    private readonly caseSensitive = false,
  ) {
    this.rules = source.map((text) => parseRule(text, caseSensitive));
  }

  /** Whether some table of `schema` could match: database DDL is replicated when it does. */
  matchSchema(schema: string): boolean {
    if (SYSTEM_SCHEMAS.includes(schema.toLowerCase())) return false;
    return this.rules.some((rule) => !rule.negated && rule.schema.test(schema));
  }

  match(schema: string, table: string): boolean {
    if (SYSTEM_SCHEMAS.includes(schema.toLowerCase())) return false;
    for (let i = this.rules.length - 1; i >= 0; i--) {
      const rule = this.rules[i];
      if (rule.schema.test(schema) && rule.table.test(table)) return !rule.negated;
    }
    return false;
  }
}

function parseRule(text: string, caseSensitive: boolean): Rule {
  const bad = (why: string): TidemarkError =>
    new TidemarkError('ErrConfigInvalid', `invalid table filter rule "${text}" in [filter] rules: ${why}`, {
      hint: 'rules look like "db.*", "*.t?", "!db.tmp*" or "`my.db`.`t`"',
    });
  let rest = text.trim();
  const negated = rest.startsWith('!');
  if (negated) rest = rest.slice(1);
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (c === '`') {
      const end = rest.indexOf('`', i + 1);
      if (end < 0) throw bad('unclosed backquote');
      current += escapeLiteral(rest.slice(i + 1, end));
      i = end;
    } else if (c === '.') {
      parts.push(current);
      current = '';
    } else if (c === '\\' && i + 1 < rest.length) {
      current += escapeLiteral(rest[++i]);
    } else if (c === '*') current += '.*';
    else if (c === '?') current += '.';
    else if (c === '[') {
      const end = rest.indexOf(']', i + 1);
      if (end < 0) throw bad('unclosed [');
      const body = rest.slice(i + 1, end);
      current += `[${body.startsWith('!') ? '^' + body.slice(1) : body}]`;
      i = end;
    } else if (/[A-Za-z0-9_$\-\u0080-\uffff]/.test(c)) current += c;
    else throw bad(`unexpected character "${c}"`);
  }
  parts.push(current);
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') throw bad('expected schema.table');
  const flags = caseSensitive ? '' : 'i';
  return { negated, schema: new RegExp(`^${parts[0]}$`, flags), table: new RegExp(`^${parts[1]}$`, flags) };
}

function escapeLiteral(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
