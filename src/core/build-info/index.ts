import { readFileSync } from 'node:fs';

export interface BuildInfo {
  readonly name: string;
  readonly version: string;
  readonly node: string;
  readonly platform: string;
}

let cached: BuildInfo | undefined;

/** Tidemark's own version and the runtime it runs on, read once from the package manifest. */
export function buildInfo(): BuildInfo {
  if (cached === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      name: string;
      version: string;
    };
    cached = Object.freeze({
      name: pkg.name,
      version: pkg.version,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    });
  }
  return cached;
}
