import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Plugin } from '@oclif/core';

/**
 * oclif reads commands from oclif.manifest.json when it exists, so a stale manifest hides new commands
 * and flags. The build regenerates it; this test fails when the committed one differs from the build.
 */
describe('oclif.manifest.json', () => {
  it('matches the commands of the current build', async () => {
    const root = new URL('../..', import.meta.url).pathname;
    const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
    await plugin.load();
    const fresh = JSON.parse(JSON.stringify(plugin.manifest.commands)) as Record<string, unknown>;
    const committed = (JSON.parse(readFileSync(new URL('../../oclif.manifest.json', import.meta.url), 'utf8')) as {
      commands: Record<string, unknown>;
    }).commands;
    assert.deepEqual(Object.keys(committed).sort(), Object.keys(fresh).sort(), 'command ids differ: run `npm run build` and commit oclif.manifest.json');
    assert.deepEqual(committed, fresh, 'command flags or descriptions differ: run `npm run build` and commit oclif.manifest.json');
  });
});
