import { Command } from '@oclif/core';
import { TidemarkError } from '../core/errors/index.js';
import { redactArgs } from '../core/config/uri.js';

/** Flags whose value is a password: replaced by xxxxx in the process title (`--password x`, `--password=x`). */
const SECRET_FLAGS = ['--password', '--etcd-password'];

/** `args` with the values of SECRET_FLAGS replaced; the same array when there is none. */
export function redactSecretFlags(args: readonly string[]): readonly string[] {
  let changed = false;
  const out = args.map((arg, i) => {
    if (i > 0 && SECRET_FLAGS.includes(args[i - 1])) {
      changed = true;
      return 'xxxxx';
    }
    const flag = SECRET_FLAGS.find((f) => arg.startsWith(`${f}=`));
    if (flag === undefined) return arg;
    changed = true;
    return `${flag}=xxxxx`;
  });
  return changed ? out : args;
}

/**
 * The base of every `cdc` command: `--json` on all of them, and a `TidemarkError` turned into
 * a message with its hint and the exit code of its catalogue entry (instead of a stack trace).
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true;

  protected override async init(): Promise<void> {
    // a password in a URI argument (--upstream, --sink-uri) must not stay readable in `ps` for the process's life
    const redacted = redactSecretFlags(redactArgs(process.argv) ?? process.argv);
    if (redacted !== process.argv) process.title = redacted.join(' ');
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
