import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { TidemarkError } from '../core/errors/index.js';
import { hashPassword } from '../core/api/auth.js';

export default class HashPassword extends BaseCommand {
  static override description =
    'Print the scrypt hash of an API password for the server config\'s [security.client-user-list] (name = "hash"). The password is read from stdin (or TIDEMARK_PASSWORD), never from the command line.';
  static override examples = ['printf %s "$PASSWORD" | <%= config.bin %> hash-password', '<%= config.bin %> hash-password --user admin < password.txt'];
  static override flags = {
    user: Flags.string({ description: 'print a TOML line `user = "hash"` instead of the hash alone' }),
  };

  async run(): Promise<{ hash: string }> {
    const { flags } = await this.parse(HashPassword);
    const password = process.env['TIDEMARK_PASSWORD'] ?? (await readStdin());
    if (password.length === 0) {
      throw new TidemarkError('ErrInvalidArgument', 'no password: pipe it on stdin (printf %s "$PASSWORD" | cdc hash-password) or set TIDEMARK_PASSWORD');
    }
    const hash = await hashPassword(password);
    if (!this.jsonEnabled()) this.log(flags.user === undefined ? hash : `${JSON.stringify(flags.user)} = "${hash}"`);
    return { hash };
  }
}

/** stdin as text, without its final line break; empty when stdin is a terminal (nothing piped). */
async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
