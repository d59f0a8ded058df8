import type { DDLEvent } from '../sink/api.js';

/** A table a DDL names, qualified with the statement's default schema when it was not. */
export interface QualifiedName {
  readonly schema: string;
  readonly table: string;
}

export interface ClassifiedDDL {
  readonly kind: DDLEvent['kind'];
  /** Tables the statement changes (for RENAME: the old names). */
  readonly tables: readonly QualifiedName[];
  /** For RENAME TABLE / ALTER TABLE … RENAME: the new names, one per entry of `tables`. */
  readonly renamedTo: readonly QualifiedName[];
  /** CREATE / DROP DATABASE: the database. */
  readonly database?: string;
}

// an identifier: `quoted` (with `` escapes) or bare
const IDENT = String.raw`(?:\x60(?:[^\x60]|\x60\x60)+\x60|[\w$\u0080-\uffff]+)`;
const NAME = String.raw`(${IDENT}(?:\s*\.\s*${IDENT})?)`;

function unquote(ident: string): string {
  const t = ident.trim();
  return t.startsWith('`') ? t.slice(1, -1).replaceAll('``', '`') : t;
}

/** `db`.`t` or t → { schema, table }, the default schema filling in. */
function qualify(name: string, defaultSchema: string): QualifiedName {
  const parts = name.match(new RegExp(IDENT, 'gu')) ?? [];
  if (parts.length >= 2) return { schema: unquote(parts[0]!), table: unquote(parts[1]) };
  return { schema: defaultSchema, table: unquote(parts[0] ?? '') };
}

/** Removes comments (keeping MySQL's executable `/*! … *\/` content) and leading whitespace. */
function normalise(query: string): string {
  return query
    .replace(/\/\*!\d*\s*([\s\S]*?)\*\//g, '$1')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/(^|\n)\s*(--|#)[^\n]*/g, '$1')
    .trim();
}

/**
 * What a DDL statement does to the table set, as far as replication needs to know (DESIGN §5, the owner's
 * DDL handling): CREATE / DROP / RENAME / TRUNCATE / ALTER TABLE and CREATE / DROP DATABASE with the tables
 * they name, everything else `other`. A syntactic classifier, not a SQL parser: statements it does not
 * recognise are still delivered to the sink as `other`.
 */
export function classifyDDL(query: string, defaultSchema: string): ClassifiedDDL {
  const q = normalise(query);
  const none: ClassifiedDDL = { kind: 'other', tables: [], renamedTo: [] };
  let m: RegExpMatchArray | null;
  if ((m = q.match(new RegExp(String.raw`^create\s+(?:or\s+replace\s+)?(?:temporary\s+)?table\s+(?:if\s+not\s+exists\s+)?${NAME}`, 'iu')))) {
    if (/^create\s+temporary/i.test(q)) return none;
    return { kind: 'create-table', tables: [qualify(m[1], defaultSchema)], renamedTo: [] };
  }
  if ((m = q.match(/^drop\s+(?:temporary\s+)?tables?\s+(?:if\s+exists\s+)?([\s\S]+?)(?:\s+(?:restrict|cascade))?\s*;?$/iu))) {
    if (/^drop\s+temporary/i.test(q)) return none;
    const names = m[1].match(new RegExp(NAME, 'gu')) ?? [];
    return { kind: 'drop-table', tables: names.map((n) => qualify(n, defaultSchema)), renamedTo: [] };
  }
  if ((m = q.match(/^rename\s+tables?\s+([\s\S]+?)\s*;?$/iu))) {
    const pairs = m[1].split(/\s*,\s*(?=(?:[^`]*`[^`]*`)*[^`]*$)/u);
    const from: QualifiedName[] = [];
    const to: QualifiedName[] = [];
    for (const pair of pairs) {
      const p = pair.match(new RegExp(String.raw`^${NAME}\s+to\s+${NAME}$`, 'iu'));
      if (p === null) continue;
      from.push(qualify(p[1], defaultSchema));
      to.push(qualify(p[2], defaultSchema));
    }
    return { kind: 'rename-table', tables: from, renamedTo: to };
  }
  if ((m = q.match(new RegExp(String.raw`^truncate\s+(?:table\s+)?${NAME}`, 'iu')))) {
    return { kind: 'truncate-table', tables: [qualify(m[1], defaultSchema)], renamedTo: [] };
  }
  if ((m = q.match(new RegExp(String.raw`^alter\s+(?:online\s+|ignore\s+)*table\s+${NAME}([\s\S]*)$`, 'iu')))) {
    const table = qualify(m[1], defaultSchema);
    const rename = m[2].match(new RegExp(String.raw`(?:^|,)\s*rename\s+(?:to\s+|as\s+)?${NAME}\s*(?:,|;|$)`, 'iu'));
    if (rename !== null && !/^\s*rename\s+(?:column|index|key)/iu.test(m[2])) {
      return { kind: 'rename-table', tables: [table], renamedTo: [qualify(rename[1], defaultSchema)] };
    }
    return { kind: 'alter-table', tables: [table], renamedTo: [] };
  }
  if ((m = q.match(new RegExp(String.raw`^(?:create\s+(?:unique\s+|fulltext\s+|spatial\s+)?|drop\s+)index\s+${IDENT}\s+on\s+${NAME}`, 'iu')))) {
    return { kind: 'alter-table', tables: [qualify(m[1], defaultSchema)], renamedTo: [] };
  }
  if ((m = q.match(new RegExp(String.raw`^create\s+(?:database|schema)\s+(?:if\s+not\s+exists\s+)?(${IDENT})`, 'iu')))) {
    return { kind: 'create-database', tables: [], renamedTo: [], database: unquote(m[1]) };
  }
  if ((m = q.match(new RegExp(String.raw`^drop\s+(?:database|schema)\s+(?:if\s+exists\s+)?(${IDENT})`, 'iu')))) {
    return { kind: 'drop-database', tables: [], renamedTo: [], database: unquote(m[1]) };
  }
  return none;
}
