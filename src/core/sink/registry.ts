import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { TidemarkError } from '../errors/index.js';

/** What a plugin package declares in its package.json under "tidemark" (DESIGN §6). */
export interface TidemarkPluginManifest {
  readonly sinks?: Readonly<Record<string, string>>;
  readonly dispatchers?: Readonly<Record<string, string>>;
}

/** The part of an oclif plugin the registry reads (oclif's Plugin satisfies it). */
export interface PluginDescriptor {
  readonly name: string;
  readonly root: string;
  /** The plugin's package.json; only its `tidemark` section is read. */
  readonly pjson: object;
}

export interface SinkEntry {
  readonly scheme: string;
  readonly plugin: string;
  /** Absolute file URL of the module that exports the sink factory. */
  readonly module: string;
}

/**
 * Sink schemes → the plugin module that implements them, built from the loaded oclif plugins' `tidemark`
 * sections; core never switches on a scheme. A plugin whose manifest is broken is recorded as a failure
 * and reported when its scheme is asked for; the server still boots.
 */
export class SinkRegistry {
  private readonly sinks = new Map<string, SinkEntry>();
  private readonly failures = new Map<string, string>();

  static fromPlugins(plugins: readonly PluginDescriptor[]): SinkRegistry {
    const registry = new SinkRegistry();
    for (const plugin of plugins) registry.addPlugin(plugin);
    return registry;
  }

  addPlugin(plugin: PluginDescriptor): void {
    const sinks = (plugin.pjson as { tidemark?: TidemarkPluginManifest }).tidemark?.sinks;
    if (sinks === undefined) return;
    for (const [scheme, path] of Object.entries(sinks)) {
      if (!/^[a-z][a-z0-9+.-]*$/.test(scheme) || typeof path !== 'string') {
        this.failures.set(scheme, `plugin ${plugin.name} declares an invalid sink "${scheme}" → ${String(path)}`);
        continue;
      }
      const existing = this.sinks.get(scheme);
      if (existing !== undefined && existing.plugin !== plugin.name) {
        this.failures.set(scheme, `sink scheme "${scheme}" is declared by both ${existing.plugin} and ${plugin.name}`);
        continue;
      }
      this.sinks.set(scheme, { scheme, plugin: plugin.name, module: pathToFileURL(join(plugin.root, path)).href });
    }
  }

  get schemes(): string[] {
    return [...this.sinks.keys()].sort();
  }

  /** The entry for a sink URI's scheme, or ErrSinkUnknownScheme listing the installed ones. */
  resolve(sinkUri: string): SinkEntry {
    let url: URL;
    try {
      url = new URL(sinkUri);
    } catch {
      throw new TidemarkError('ErrSinkURIInvalid', `invalid --sink-uri "${sinkUri}": not a URI (expected scheme://…, e.g. blackhole://)`);
    }
    const scheme = url.protocol.slice(0, -1);
    const failure = this.failures.get(scheme);
    if (failure !== undefined) throw new TidemarkError('ErrSinkUnknownScheme', `sink scheme "${scheme}" could not be loaded: ${failure}`);
    const entry = this.sinks.get(scheme);
    if (entry === undefined) {
      throw new TidemarkError('ErrSinkUnknownScheme', `unknown sink scheme "${scheme}" in --sink-uri; installed: ${this.schemes.join(', ') || '(none)'}`, {
        hint: 'install a sink plugin with `cdc plugins install <package>` or fix the scheme',
        details: { scheme, installed: this.schemes },
      });
    }
    return entry;
  }
}
