import { Command } from '@oclif/core';
import { TidemarkError } from '../core/errors/index.js';
import { redactArgs } from '../core/config/uri.js';

/**
 * The base of every `cdc` command: `--json` on all of them, and a `TidemarkError` turned into
 * a message with its hint and the exit code of its catalogue entry (instead of a stack trace).
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true;

  protected override async init(): Promise<void> {
    // a password in a URI argument (--upstream, --sink-uri) must not stay readable in `ps` for the process's life
    const redacted = redactArgs(process.argv);
    if (redacted !== undefined) process.title = redacted.join(' ');
    await super.init();
  }

  protected override async catch(error: Error & { exitCode?: number }): Promise<unknown> {
    if (error instanceof TidemarkError) {
      if (this.jsonEnabled()) {
        this.logJson({ error: error.toJSON() });
        this.exit(error.exitCode);
      }
      // printed unwrapped, so a long value (a path, a URI) stays whole and can be copied or matched
      process.stderr.write(`Error: ${error.code}: ${error.message}\n${error.hint === undefined ? '' : `Hint: ${error.hint}\n`}`);
      this.exit(error.exitCode);
    }
    return super.catch(error);
  }
}
