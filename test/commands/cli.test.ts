import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const bin = new URL('../../bin/run.js', import.meta.url).pathname;

describe('the built `cdc` binary', () => {
  it('lists its commands in --help', async () => {
    const { stdout } = await run(process.execPath, [bin, '--help']);
    assert.match(stdout, /\$ cdc \[COMMAND\]/);
    assert.match(stdout, /^ {2}version +Print the version of Tidemark/m);
  });

  it('prints its version, as text and as JSON', async () => {
    const pkg = JSON.parse((await import('node:fs')).readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const text = await run(process.execPath, [bin, 'version']);
    assert.match(text.stdout, new RegExp(`^tidemark ${pkg.version.replaceAll('.', '\\.')} \\(node v\\d+`));
    const json = await run(process.execPath, [bin, 'version', '--json']);
    assert.deepEqual(JSON.parse(json.stdout), {
      name: 'tidemark',
      version: pkg.version,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    });
  });

  it('runs as `npx cdc` from the clone (the package\'s own bin, nothing fetched)', async () => {
    const { stdout } = await run('npx', ['--no-install', 'cdc', '--version'], { cwd: new URL('../../', import.meta.url).pathname });
    assert.match(stdout, /^tidemark\/\d+\.\d+\.\d+ /);
  });

  it('names an unknown command and exits non-zero', async () => {
    await assert.rejects(run(process.execPath, [bin, 'frobnicate']), (error: { code: number; stderr: string }) => {
      assert.notEqual(error.code, 0);
      assert.match(error.stderr, /frobnicate/);
      return true;
    });
  });
});
