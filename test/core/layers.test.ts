import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Every relative import of every source file under src/, as [importer, imported] paths from the repo root. */
function imports(): [string, string][] {
  const out: [string, string][] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.tsx?$/.test(entry.name)) {
        for (const m of readFileSync(join(ROOT, path), 'utf8').matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/g)) {
          out.push([path, relative(ROOT, normalize(join(ROOT, dirname(path), m[1]))).replace(/\.js$/, '.ts')]);
        }
      }
    }
  };
  walk('src');
  return out;
}

const room = (path: string): string => {
  const parts = path.split('/');
  return parts[1] === 'core' ? `core/${parts[2]}` : parts[1];
};

describe('layers (the import directions of src/)', () => {
  const all = imports();

  it('src/core imports nothing of the CLI, the commands or the TUI', () => {
    const wrong = all.filter(([from, to]) => from.startsWith('src/core/') && /^src\/(commands|ui|cli)\//.test(to));
    assert.deepEqual(wrong, []);
  });

  it('the commands, the CLI and the TUI reach the core through the API room, not owner/ or server/ (only `cdc server` starts a Server)', () => {
    const wrong = all.filter(([from, to]) => /^src\/(commands|ui|cli)\//.test(from) && /^src\/core\/(owner|server)\//.test(to) && !(from === 'src/commands/server.ts' && to === 'src/core/server/server.ts'));
    assert.deepEqual(wrong, []);
  });

  it('no two rooms of src/core import each other (the admin handlers live in api/, above the owner and the capture)', () => {
    const edges = new Set(all.filter(([from, to]) => from.startsWith('src/core/') && to.startsWith('src/core/') && room(from) !== room(to)).map(([from, to]) => `${room(from)} -> ${room(to)}`));
    const mutual = [...edges].filter((e) => e.split(' -> ')[0] < e.split(' -> ')[1] && edges.has(e.split(' -> ').reverse().join(' -> '))).sort();
    assert.deepEqual(mutual, []);
  });
});
