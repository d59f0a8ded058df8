import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkBinlogSettings, checkReplicationGrants, hasFullRowMetadata, type BinlogSettings } from '../../../src/core/upstream/preflight.js';

const good: BinlogSettings = { logBin: 1, binlogFormat: 'ROW', binlogRowImage: 'FULL' };

describe('upstream preflight: binlog settings', () => {
  const cases: [string, Partial<BinlogSettings>, string | null, RegExp?][] = [
    ['ROW + FULL (MariaDB reports log_bin as 1)', {}, null],
    ['log_bin reported as ON', { logBin: 'ON' }, null],
    ['lower-case values', { binlogFormat: 'row', binlogRowImage: 'full' }, null],
    ['binary log off', { logBin: 0 }, 'ErrBinlogDisabled', /log_bin is 0/],
    ['binary log OFF', { logBin: 'OFF' }, 'ErrBinlogDisabled', /--log-bin/],
    ['STATEMENT format', { binlogFormat: 'STATEMENT' }, 'ErrBinlogFormatNotRow', /binlog_format is STATEMENT, not ROW/],
    ['MIXED format', { binlogFormat: 'MIXED' }, 'ErrBinlogFormatNotRow', /MIXED/],
    ['MINIMAL row image', { binlogRowImage: 'MINIMAL' }, 'ErrBinlogRowImageNotFull', /binlog_row_image is MINIMAL, not FULL/],
    ['NOBLOB row image', { binlogRowImage: 'NOBLOB' }, 'ErrBinlogRowImageNotFull', /NOBLOB/],
    // below FULL, the changefeed mounts rows through its schema storage
    ['binlog_row_metadata NO_LOG', { binlogRowMetadata: 'NO_LOG' }, null],
    ['binlog_row_metadata MINIMAL', { binlogRowMetadata: 'MINIMAL' }, null],
  ];
  for (const [name, change, code, message] of cases) {
    it(name, () => {
      const run = () => checkBinlogSettings({ ...good, ...change });
      if (code === null) assert.doesNotThrow(run);
      else assert.throws(run, (e: unknown) => {
        const err = e as { code: string; message: string; retryable: boolean };
        assert.equal(err.code, code);
        assert.match(err.message, message ?? /./);
        assert.equal(err.retryable, false);
        return true;
      });
    });
  }
});

describe('upstream preflight: row metadata', () => {
  it('only FULL carries the column names; MINIMAL, NO_LOG and servers without the variable need the schema storage', () => {
    assert.equal(hasFullRowMetadata({ binlogRowMetadata: 'FULL' }), true);
    assert.equal(hasFullRowMetadata({ binlogRowMetadata: 'full' }), true);
    assert.equal(hasFullRowMetadata({ binlogRowMetadata: 'MINIMAL' }), false);
    assert.equal(hasFullRowMetadata({ binlogRowMetadata: 'NO_LOG' }), false);
    assert.equal(hasFullRowMetadata({ binlogRowMetadata: null }), false);
    assert.equal(hasFullRowMetadata({}), false);
  });
});

describe('upstream preflight: replication grants', () => {
  const cases: [string, string[], boolean][] = [
    ['ALL PRIVILEGES', ["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"], true],
    ['REPLICATION SLAVE', ["GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `cdc`@`%`"], true],
    ['MariaDB REPLICATION REPLICA spelling', ["GRANT REPLICATION REPLICA ON *.* TO `cdc`@`%`"], true],
    ['only SELECT', ["GRANT SELECT ON *.* TO `cdc`@`%`"], false],
    ['ALL on one database only', ['GRANT USAGE ON *.* TO `cdc`@`%`', 'GRANT ALL PRIVILEGES ON `app`.* TO `cdc`@`%`'], false],
    ['no grants', [], false],
  ];
  for (const [name, grants, ok] of cases) {
    it(name, () => {
      const run = () => checkReplicationGrants('cdc@%', grants);
      if (ok) assert.doesNotThrow(run);
      else assert.throws(run, { code: 'ErrReplicationPrivilege', message: /lacks REPLICATION SLAVE/ });
    });
  }
});
