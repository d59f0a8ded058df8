import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BugIndicatingError, TidemarkError, errorCatalogue, isAbortError, type TidemarkErrorJSON } from '../../../src/core/errors/index.js';

describe('TidemarkError', () => {
  it('takes retryability, HTTP status and exit code from the catalogue', () => {
    const cases = [
      { code: 'ErrSinkURIInvalid', retryable: false, httpStatus: 400, exitCode: 2 },
      { code: 'ErrEtcdUnreachable', retryable: true, httpStatus: 503, exitCode: 3 },
      { code: 'ErrBinlogPurged', retryable: false, httpStatus: 500, exitCode: 1 },
      { code: 'ErrConnectionLost', retryable: true, httpStatus: 500, exitCode: 1 },
    ] as const;
    for (const c of cases) {
      const error = new TidemarkError(c.code, 'x');
      assert.deepEqual(
        { code: error.code, retryable: error.retryable, httpStatus: error.httpStatus, exitCode: error.exitCode },
        c,
      );
    }
  });

  it('round-trips through JSON with its hint and details', () => {
    const error = new TidemarkError('ErrSinkUnknownScheme', 'unknown sink scheme "kafak"', {
      hint: 'installed: blackhole, kafka, mysql',
      details: { scheme: 'kafak', allowed: ['blackhole', 'kafka', 'mysql'] },
    });
    const back = TidemarkError.fromJSON(JSON.parse(JSON.stringify(error)) as TidemarkErrorJSON);
    assert.deepEqual(back.toJSON(), error.toJSON());
    assert.equal(back.code, 'ErrSinkUnknownScheme');
    assert.equal(back.hint, 'installed: blackhole, kafka, mysql');
  });

  it('lets a case override retryability, and marks invariant breaks as non-retryable bugs', () => {
    assert.equal(new TidemarkError('ErrConnectionLost', 'x', { retryable: false }).retryable, false);
    const bug = new BugIndicatingError('checkpoint went backwards', { from: '10', to: '9' });
    assert.equal(bug.code, 'ErrBugIndicating');
    assert.equal(bug.retryable, false);
    assert.ok(bug instanceof TidemarkError);
  });

  it('recognises aborts and only aborts', () => {
    assert.equal(isAbortError(new TidemarkError('ErrAborted', 'stopped')), true);
    assert.equal(isAbortError(AbortSignal.abort().reason), true);
    assert.equal(isAbortError(new TidemarkError('ErrTimeout', 'slow')), false);
    assert.equal(isAbortError(new Error('boom')), false);
  });

  it('has a behaviour for every code, with sane values', () => {
    for (const [code, behaviour] of Object.entries(errorCatalogue)) {
      assert.ok(code.startsWith('Err'), code);
      assert.ok(behaviour.httpStatus >= 400 && behaviour.httpStatus < 600, code);
      assert.ok(behaviour.exitCode > 0, code);
    }
  });
});
