import { columnCharset, charsetOfCollation, type ColumnSchema, type TableSchema } from './table-schema.js';

/**
 * The part of MySQL/MariaDB DDL that decides how row images decode: column lists of CREATE TABLE and the
 * column changes of ALTER TABLE (ADD / DROP / MODIFY / CHANGE / RENAME COLUMN, primary key, CONVERT TO
 * CHARACTER SET), applied to a table definition. Not a SQL parser: a tokenizer and the clauses that matter;
 * a clause it does not know makes `applyAlter` throw `UntrackableDDL`, so the caller never guesses.
 */

export type Token =
  | { readonly kind: 'word'; readonly text: string; readonly lower: string; readonly quoted: boolean }
  | { readonly kind: 'string'; readonly text: string }
  | { readonly kind: 'number'; readonly text: string }
  | { readonly kind: 'punct'; readonly text: string };

export class UntrackableDDL extends Error {}

/** Splits SQL into words (bare or `quoted`), strings ('…' or "…"), numbers and punctuation; drops comments. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    if (/\s/u.test(c)) { i++; continue; }
    if (c === '#' || (c === '-' && sql[i + 1] === '-' && /\s/u.test(sql[i + 2] ?? ' '))) {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      const body = sql.slice(i + 2, end < 0 ? n : end);
      i = end < 0 ? n : end + 2;
      // MySQL's executable comments /*!50100 … */ and MariaDB's /*M! … */ hold real SQL
      const exec = /^(?:M?!)(\d{5,6})?/u.exec(body);
      if (exec !== null) out.push(...tokenize(body.slice(exec[0].length)));
      continue;
    }
    if (c === '`') {
      let text = '';
      i++;
      while (i < n) {
        if (sql[i] === '`') {
          if (sql[i + 1] === '`') { text += '`'; i += 2; continue; }
          i++;
          break;
        }
        text += sql[i++];
      }
      out.push({ kind: 'word', text, lower: text.toLowerCase(), quoted: true });
      continue;
    }
    if (c === "'" || c === '"') {
      let text = '';
      i++;
      while (i < n) {
        const d = sql[i];
        if (d === '\\' && i + 1 < n) { text += unescape(sql[i + 1]); i += 2; continue; }
        if (d === c) {
          if (sql[i + 1] === c) { text += c; i += 2; continue; }
          i++;
          break;
        }
        text += d;
        i++;
      }
      out.push({ kind: 'string', text });
      continue;
    }
    if (/[0-9]/u.test(c) || (c === '.' && /[0-9]/u.test(sql[i + 1] ?? ''))) {
      const m = /^[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?|^[0-9]+/iu.exec(sql.slice(i))!;
      // a number glued to letters is an identifier (1abc is a valid bare name)
      const word = /^[\w$\u0080-\uffff]+/u.exec(sql.slice(i))![0];
      if (word.length > m[0].length && !/^[0-9]*\.?[0-9]+e[+-]?[0-9]+$/iu.test(word)) {
        out.push({ kind: 'word', text: word, lower: word.toLowerCase(), quoted: false });
        i += word.length;
      } else {
        out.push({ kind: 'number', text: m[0] });
        i += m[0].length;
      }
      continue;
    }
    const word = /^[\w$\u0080-\uffff]+/u.exec(sql.slice(i, i + 256));
    if (word !== null) {
      out.push({ kind: 'word', text: word[0], lower: word[0].toLowerCase(), quoted: false });
      i += word[0].length;
      continue;
    }
    out.push({ kind: 'punct', text: c });
    i++;
  }
  return out;
}

function unescape(c: string): string {
  switch (c) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case '0': return '\0';
    case 'Z': return '\x1a';
    default: return c;
  }
}

/** A cursor over tokens. */
class Cursor {
  i = 0;
  constructor(readonly tokens: readonly Token[]) {}
  peek(k = 0): Token | undefined { return this.tokens[this.i + k]; }
  done(): boolean { return this.i >= this.tokens.length; }
  next(): Token {
    const t = this.tokens[this.i++];
    if (t === undefined) throw new UntrackableDDL('the statement ends too early');
    return t;
  }
  /** Consumes the keyword(s) if they come next (bare words, case-insensitive). */
  accept(...words: string[]): boolean {
    for (let k = 0; k < words.length; k++) {
      const t = this.tokens[this.i + k];
      if (t?.kind !== 'word' || t.quoted || t.lower !== words[k]) return false;
    }
    this.i += words.length;
    return true;
  }
  acceptPunct(p: string): boolean {
    if (this.peek()?.kind === 'punct' && this.peek()!.text === p) { this.i++; return true; }
    return false;
  }
  isWord(word: string, k = 0): boolean {
    const t = this.tokens[this.i + k];
    return t?.kind === 'word' && !t.quoted && t.lower === word;
  }
  identifier(): string {
    const t = this.next();
    if (t.kind !== 'word') throw new UntrackableDDL(`expected a name, found ${t.text}`);
    return t.text;
  }
  /** The tokens inside the parentheses that start here, split on top-level commas. */
  group(): Token[][] {
    if (!this.acceptPunct('(')) throw new UntrackableDDL('expected (');
    const items: Token[][] = [[]];
    let depth = 0;
    for (;;) {
      const t = this.next();
      if (t.kind === 'punct') {
        if (t.text === '(') depth++;
        else if (t.text === ')') {
          if (depth === 0) break;
          depth--;
        } else if (t.text === ',' && depth === 0) {
          items.push([]);
          continue;
        }
      }
      items[items.length - 1].push(t);
    }
    return items.length === 1 && items[0].length === 0 ? [] : items;
  }
  /** Skips one expression: a token, or a token followed by a parenthesised group (function call), or a group. */
  skipExpression(): void {
    if (this.peek()?.kind === 'punct' && this.peek()!.text === '(') { this.group(); return; }
    this.next();
    if (this.peek()?.kind === 'punct' && this.peek()!.text === '(') this.group();
  }
  /** `name` or `db`.`name` → [schema | undefined, name]. */
  qualifiedName(): [string | undefined, string] {
    const first = this.identifier();
    if (this.acceptPunct('.')) return [first, this.identifier()];
    return [undefined, first];
  }
}

const TYPE_ALIASES: Record<string, string> = {
  integer: 'int', int1: 'tinyint', int2: 'smallint', int3: 'mediumint', int4: 'int', int8: 'bigint', middleint: 'mediumint',
  bool: 'tinyint', boolean: 'tinyint', dec: 'decimal', numeric: 'decimal', fixed: 'decimal', real: 'double', float4: 'float',
  float8: 'double', character: 'char', nchar: 'char', nvarchar: 'varchar', varchar2: 'varchar', nvarchar2: 'varchar',
  raw: 'varbinary', clob: 'longtext', number: 'decimal', serial: 'bigint',
};

const KNOWN_TYPES = new Set([
  'tinyint', 'smallint', 'mediumint', 'int', 'bigint', 'decimal', 'float', 'double', 'bit', 'date', 'time', 'datetime', 'timestamp',
  'year', 'char', 'varchar', 'binary', 'varbinary', 'tinytext', 'text', 'mediumtext', 'longtext', 'tinyblob', 'blob', 'mediumblob',
  'longblob', 'enum', 'set', 'json', 'uuid', 'inet6', 'inet4', 'geometry', 'point', 'linestring', 'polygon', 'multipoint',
  'multilinestring', 'multipolygon', 'geometrycollection', 'geomcollection', 'vector',
]);

/** Reads the data type at the cursor: its base name, the full type text and ENUM/SET members. */
function readDataType(c: Cursor): { dataType: string; columnType: string; values?: string[]; unsignedDefault: boolean; charset?: string } {
  const t = c.next();
  if (t.kind !== 'word') throw new UntrackableDDL(`expected a data type, found ${t.text}`);
  let base = t.lower;
  let charset: string | undefined;
  if (base === 'national') {
    base = (c.next() as { lower?: string }).lower ?? base; // NATIONAL CHAR / VARCHAR / CHARACTER [VARYING]
    charset = 'utf8mb3';
  }
  if (base === 'double' && c.accept('precision')) base = 'double';
  if ((base === 'char' || base === 'character') && c.accept('varying')) base = 'varchar';
  if (base === 'long') {
    // LONG VARBINARY is MEDIUMBLOB; LONG, LONG VARCHAR are MEDIUMTEXT
    if (c.accept('varbinary')) base = 'mediumblob';
    else {
      if (!c.accept('varchar')) c.accept('varcharacter');
      base = 'mediumtext';
    }
  }
  if (base === 'nchar' && c.accept('varchar')) base = 'varchar';
  if (base === 'nchar' || base === 'nvarchar') charset = 'utf8mb3';
  const alias = TYPE_ALIASES[base];
  const unsignedDefault = base === 'serial';
  const isBool = base === 'bool' || base === 'boolean';
  if (alias !== undefined) base = alias;
  if (!KNOWN_TYPES.has(base)) throw new UntrackableDDL(`unknown data type ${t.text}`);
  let args = '';
  let values: string[] | undefined;
  if (c.peek()?.kind === 'punct' && c.peek()!.text === '(') {
    const items = c.group();
    if (base === 'enum' || base === 'set') {
      values = items.map((item) => {
        const s = item.find((x) => x.kind === 'string');
        if (s === undefined) throw new UntrackableDDL(`${base} member is not a string`);
        return s.text;
      });
      args = `(${values.map((v) => `'${v.replaceAll("'", "''")}'`).join(',')})`;
    } else {
      args = `(${items.map((item) => item.map((x) => x.text).join('')).join(',')})`;
    }
  } else if (isBool) {
    args = '(1)';
  }
  return { dataType: base, columnType: `${base}${args}`, ...(values === undefined ? {} : { values }), unsignedDefault, ...(charset === undefined ? {} : { charset }) };
}

export interface ParsedColumn {
  readonly column: ColumnSchema;
  readonly primaryKey: boolean;
  /** FIRST, AFTER x or nothing (ALTER TABLE positions). */
  readonly position?: { readonly first: true } | { readonly after: string };
}

/** One column definition: `name type [attributes]`, from the tokens of a list item or an ALTER clause. */
function readColumn(c: Cursor, tableCharset: string, stopAtPosition: boolean): ParsedColumn {
  const name = c.identifier();
  const type = readDataType(c);
  let unsigned = type.unsignedDefault;
  let nullable = !type.unsignedDefault;
  let declaredCharset = type.charset;
  let primaryKey = false;
  let position: ParsedColumn['position'];
  while (!c.done()) {
    if (c.acceptPunct(',')) { c.i--; break; }
    if (c.accept('unsigned') || c.accept('zerofill')) { unsigned = true; continue; }
    if (c.accept('signed')) continue;
    if (c.accept('character', 'set') || c.accept('charset') || c.accept('char', 'set')) {
      declaredCharset = c.next().text.toLowerCase();
      continue;
    }
    if (c.accept('collate')) {
      declaredCharset ??= charsetOfCollation(c.next().text);
      continue;
    }
    if (c.accept('not', 'null')) { nullable = false; continue; }
    if (c.accept('null')) { nullable = true; continue; }
    if (c.accept('unique')) { c.accept('key'); continue; }
    // in a column definition, KEY alone means PRIMARY KEY
    if (c.accept('primary', 'key') || c.accept('key')) { primaryKey = true; nullable = false; continue; }
    if (c.accept('default') || c.accept('comment') || c.accept('on', 'update') || c.accept('check') || c.accept('column_format') ||
      c.accept('storage') || c.accept('ref_system_id') || c.accept('srid')) {
      c.acceptPunct('=');
      c.skipExpression();
      continue;
    }
    if (c.accept('compressed')) {
      if (c.acceptPunct('=')) c.skipExpression();
      continue;
    }
    if (stopAtPosition && c.accept('first')) { position = { first: true }; continue; }
    if (stopAtPosition && c.accept('after')) { position = { after: c.identifier() }; continue; }
    if (c.accept('generated', 'always') || c.accept('as')) {
      c.accept('as');
      c.skipExpression();
      continue;
    }
    // attributes that do not change how the row image decodes (AUTO_INCREMENT, INVISIBLE, VIRTUAL, REFERENCES …)
    c.skipExpression();
  }
  const charset = columnCharset(type.dataType, declaredCharset, tableCharset);
  const column: ColumnSchema = {
    name,
    dataType: type.dataType,
    columnType: `${type.columnType}${unsigned ? ' unsigned' : ''}`,
    unsigned,
    nullable,
    charset,
    ...(type.values === undefined ? {} : { values: type.values }),
  };
  return { column, primaryKey, ...(position === undefined ? {} : { position }) };
}

/** The names in `(a, b(10), c DESC)`. */
function keyColumns(items: Token[][]): string[] {
  return items.map((item) => {
    const t = item[0];
    if (t?.kind !== 'word') throw new UntrackableDDL('expected a key column name');
    return t.text;
  });
}

/** Reads table options (`DEFAULT CHARSET=latin1`, `COLLATE=…`) for the table's default character set. */
function tableOptionsCharset(c: Cursor): string | undefined {
  let charset: string | undefined;
  while (!c.done()) {
    c.accept('default');
    if (c.accept('character', 'set') || c.accept('charset') || c.accept('char', 'set')) {
      c.acceptPunct('=');
      charset = c.next().text.toLowerCase();
    } else if (c.accept('collate')) {
      c.acceptPunct('=');
      charset ??= charsetOfCollation(c.next().text);
    } else {
      c.next();
    }
  }
  return charset;
}

/**
 * CREATE TABLE with a column list → its definition. `defaultCharset` is the database's default. CREATE
 * TABLE … LIKE and … SELECT without a column list cannot be tracked from the statement alone.
 */
export function parseCreateTable(sql: string, defaultSchema: string, defaultCharset: string): TableSchema {
  const c = new Cursor(tokenize(sql));
  if (!c.accept('create')) throw new UntrackableDDL('not CREATE TABLE');
  c.accept('or', 'replace');
  if (!c.accept('table')) throw new UntrackableDDL('not CREATE TABLE');
  c.accept('if', 'not', 'exists');
  const [schema, table] = c.qualifiedName();
  if (c.isWord('like') || !(c.peek()?.kind === 'punct' && c.peek()!.text === '(')) throw new UntrackableDDL('CREATE TABLE without a column list');
  const items = c.group();
  const optionsStart = c.i;
  const charset = tableOptionsCharset(c) ?? defaultCharset;
  if (c.tokens.slice(optionsStart).some((t) => t.kind === 'word' && !t.quoted && t.lower === 'select')) throw new UntrackableDDL('CREATE TABLE … SELECT');
  const columns: ColumnSchema[] = [];
  let primaryKey: string[] = [];
  for (const item of items) {
    const ic = new Cursor(item);
    if (ic.accept('constraint')) {
      if (!ic.isWord('primary') && !ic.isWord('unique') && !ic.isWord('foreign') && !ic.isWord('check')) ic.next();
    }
    if (ic.accept('primary', 'key')) {
      while (!(ic.peek()?.kind === 'punct' && ic.peek()!.text === '(')) ic.next();
      primaryKey = keyColumns(ic.group());
      continue;
    }
    if (['index', 'key', 'unique', 'fulltext', 'spatial', 'foreign', 'check', 'period', 'vector'].some((w) => ic.isWord(w))) continue;
    const parsed = readColumn(ic, charset, false);
    columns.push(parsed.column);
    if (parsed.primaryKey) primaryKey = [parsed.column.name];
  }
  return { schema: schema ?? defaultSchema, table, columns: withKeyNotNull(columns, primaryKey), primaryKey, charset };
}

function withKeyNotNull(columns: ColumnSchema[], primaryKey: readonly string[]): ColumnSchema[] {
  if (primaryKey.length === 0) return columns;
  const key = new Set(primaryKey.map((k) => k.toLowerCase()));
  return columns.map((col) => (key.has(col.name.toLowerCase()) && col.nullable ? { ...col, nullable: false } : col));
}

export interface AlterResult {
  readonly table: TableSchema;
  /** ALTER TABLE … RENAME TO: the new name. */
  readonly renamedTo?: { readonly schema: string; readonly table: string };
}

/** Words that start an ALTER TABLE clause which leaves the columns as they are. */
const NEUTRAL_CLAUSES = new Set([
  'algorithm', 'lock', 'engine', 'comment', 'auto_increment', 'row_format', 'force', 'order', 'key_block_size', 'stats_auto_recalc',
  'stats_persistent', 'stats_sample_pages', 'checksum', 'table_checksum', 'pack_keys', 'delay_key_write', 'max_rows', 'min_rows',
  'avg_row_length', 'page_checksum', 'page_compressed', 'page_compression_level', 'transactional', 'enable', 'disable', 'discard',
  'import', 'analyze', 'optimize', 'rebuild', 'repair', 'coalesce', 'reorganize', 'exchange', 'remove', 'partition', 'partition_by',
  'with', 'without', 'encrypted', 'encryption_key_id', 'insert_method', 'union', 'data', 'index', 'connection', 'password',
  'compression', 'secondary_engine', 'tablespace', 'storage', 'sequence', 'wait', 'nowait', 'ietf_quotes', 'truncate', 'check',
]);

/** Applies ALTER TABLE's clauses to the table; throws UntrackableDDL on any clause it cannot apply exactly. */
export function applyAlter(sql: string, defaultSchema: string, current: TableSchema): AlterResult {
  const c = new Cursor(tokenize(sql));
  if (!c.accept('alter')) throw new UntrackableDDL('not ALTER TABLE');
  while (c.accept('online') || c.accept('ignore')) { /* modifiers */ }
  if (!c.accept('table')) throw new UntrackableDDL('not ALTER TABLE');
  c.accept('if', 'exists');
  c.qualifiedName();
  if (c.accept('wait')) c.next();
  c.accept('nowait');
  const clauses: Token[][] = [[]];
  let depth = 0;
  while (!c.done()) {
    const t = c.next();
    if (t.kind === 'punct' && t.text === '(') depth++;
    if (t.kind === 'punct' && t.text === ')') depth--;
    if (t.kind === 'punct' && t.text === ',' && depth === 0) { clauses.push([]); continue; }
    if (t.kind === 'punct' && t.text === ';' && depth === 0) break;
    clauses[clauses.length - 1].push(t);
  }
  let columns = [...current.columns];
  let primaryKey = [...current.primaryKey];
  let charset = current.charset;
  let renamedTo: AlterResult['renamedTo'];
  const indexOf = (name: string): number => columns.findIndex((col) => col.name.toLowerCase() === name.toLowerCase());
  const place = (column: ColumnSchema, position: ParsedColumn['position'], at?: number): void => {
    if (position === undefined) {
      if (at === undefined) columns.push(column);
      else columns.splice(at, 0, column);
    } else if ('first' in position) columns.unshift(column);
    else {
      const after = indexOf(position.after);
      if (after < 0) throw new UntrackableDDL(`AFTER ${position.after}: no such column`);
      columns.splice(after + 1, 0, column);
    }
  };
  for (const clause of clauses) {
    if (clause.length === 0) continue;
    const k = new Cursor(clause);
    if (k.accept('add')) {
      if (k.accept('constraint')) {
        if (!k.isWord('primary') && !k.isWord('unique') && !k.isWord('foreign') && !k.isWord('check')) k.next();
      }
      if (k.accept('primary', 'key')) {
        while (!(k.peek()?.kind === 'punct' && k.peek()!.text === '(')) k.next();
        primaryKey = keyColumns(k.group());
        columns = withKeyNotNull(columns, primaryKey);
        continue;
      }
      if (['index', 'key', 'unique', 'fulltext', 'spatial', 'foreign', 'check', 'partition', 'period', 'system', 'vector'].some((w) => k.isWord(w))) continue;
      k.accept('column');
      const ifNotExists = k.accept('if', 'not', 'exists');
      const defs = k.peek()?.kind === 'punct' && k.peek()!.text === '(' ? k.group().map((item) => new Cursor(item)) : [k];
      for (const d of defs) {
        const parsed = readColumn(d, charset, true);
        if (indexOf(parsed.column.name) >= 0) {
          if (ifNotExists) continue;
          throw new UntrackableDDL(`ADD COLUMN ${parsed.column.name}: the column exists`);
        }
        place(parsed.column, parsed.position);
        if (parsed.primaryKey) primaryKey = [parsed.column.name];
      }
      continue;
    }
    if (k.accept('drop')) {
      if (k.accept('primary', 'key')) { primaryKey = []; continue; }
      if (['index', 'key', 'foreign', 'constraint', 'check', 'partition', 'period', 'system', 'unique'].some((w) => k.isWord(w))) continue;
      k.accept('column');
      const ifExists = k.accept('if', 'exists');
      const name = k.identifier();
      const at = indexOf(name);
      if (at < 0) {
        if (ifExists) continue;
        throw new UntrackableDDL(`DROP COLUMN ${name}: no such column`);
      }
      columns.splice(at, 1);
      primaryKey = primaryKey.filter((p) => p.toLowerCase() !== name.toLowerCase());
      continue;
    }
    if (k.isWord('modify') || k.isWord('change')) {
      const change = k.isWord('change');
      k.next();
      k.accept('column');
      const ifExists = k.accept('if', 'exists');
      const old = change ? k.identifier() : (k.peek()?.kind === 'word' ? (k.peek() as { text: string }).text : '');
      const at = indexOf(old);
      if (at < 0) {
        if (ifExists) continue;
        throw new UntrackableDDL(`${change ? 'CHANGE' : 'MODIFY'} ${old}: no such column`);
      }
      const parsed = readColumn(k, charset, true);
      columns.splice(at, 1);
      place(parsed.column, parsed.position, at);
      primaryKey = primaryKey.map((p) => (p.toLowerCase() === old.toLowerCase() ? parsed.column.name : p));
      if (parsed.primaryKey) primaryKey = [parsed.column.name];
      columns = withKeyNotNull(columns, primaryKey);
      continue;
    }
    if (k.accept('rename')) {
      if (k.accept('column')) {
        k.accept('if', 'exists');
        const from = k.identifier();
        if (!k.accept('to')) throw new UntrackableDDL('RENAME COLUMN without TO');
        const to = k.identifier();
        const at = indexOf(from);
        if (at < 0) throw new UntrackableDDL(`RENAME COLUMN ${from}: no such column`);
        columns[at] = { ...columns[at], name: to };
        primaryKey = primaryKey.map((p) => (p.toLowerCase() === from.toLowerCase() ? to : p));
        continue;
      }
      if (k.accept('index') || k.accept('key')) continue;
      if (!k.accept('to')) k.accept('as');
      const [schema, table] = k.qualifiedName();
      renamedTo = { schema: schema ?? defaultSchema, table };
      continue;
    }
    if (k.accept('alter')) {
      // ALTER [COLUMN] c SET DEFAULT / DROP DEFAULT / SET [IN]VISIBLE, ALTER INDEX … [IN]VISIBLE
      continue;
    }
    if (k.accept('convert', 'to')) {
      if (!(k.accept('character', 'set') || k.accept('charset'))) throw new UntrackableDDL('CONVERT TO without a character set');
      const to = k.next().text.toLowerCase();
      if (to === 'binary') throw new UntrackableDDL('CONVERT TO CHARACTER SET binary changes column types');
      // text columns change charset; MySQL may also promote TEXT sizes, which the binlog's TABLE_MAP then shows
      columns = columns.map((col) => (col.charset !== null && col.charset !== 'binary' ? { ...col, charset: to } : col));
      charset = to;
      continue;
    }
    if (k.accept('default') || k.isWord('character') || k.isWord('charset') || k.isWord('collate')) {
      charset = tableOptionsCharset(k) ?? charset;
      continue;
    }
    const head = clause[0];
    if (head.kind === 'word' && !head.quoted && NEUTRAL_CLAUSES.has(head.lower)) continue;
    throw new UntrackableDDL(`ALTER TABLE clause ${clause.map((t) => t.text).join(' ').slice(0, 60)}`);
  }
  return { table: { ...current, columns, primaryKey, charset }, ...(renamedTo === undefined ? {} : { renamedTo }) };
}

/**
 * CREATE / ALTER DATABASE: the database (ALTER DATABASE without a name: `defaultSchema`) and the default
 * character set the statement gives it, if any; undefined for other statements.
 */
export function databaseOptions(sql: string, defaultSchema: string): { database: string; charset: string | undefined } | undefined {
  const c = new Cursor(tokenize(sql));
  if (!(c.accept('create') || c.accept('alter'))) return undefined;
  if (!(c.accept('database') || c.accept('schema'))) return undefined;
  c.accept('if', 'not', 'exists');
  const named = !['default', 'character', 'charset', 'char', 'collate'].some((w) => c.isWord(w));
  const database = named ? c.identifier() : defaultSchema;
  return { database, charset: tableOptionsCharset(c) };
}

/** CREATE / ALTER DATABASE … CHARACTER SET x: the database's new default character set, if the statement sets one. */
export function databaseCharset(sql: string): string | undefined {
  return databaseOptions(sql, '')?.charset;
}
