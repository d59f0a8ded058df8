import { Command, Errors } from '@oclif/core';
import { TidemarkError } from '../core/errors/index.js';

/**
 * The base of every `cdc` command: `--json` on all of them, and a `TidemarkError` turned into
 * a message with its hint and the exit code of its catalogue entry (instead of a stack trace).
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true;

  protected override async catch(error: Error & { exitCode?: number }): Promise<unknown> {
    if (error instanceof TidemarkError) {
      if (this.jsonEnabled()) {
        this.logJson({ error: error.toJSON() });
        this.exit(error.exitCode);
      }
      const text = error.hint === undefined ? `${error.code}: ${error.message}` : `${error.code}: ${error.message}\nHint: ${error.hint}`;
      throw new Errors.CLIError(text, { exit: error.exitCode });
    }
    return super.catch(error);
  }
}
