import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { TidemarkError } from '../errors/index.js';
import type { PartitionDispatcherFactory, SinkFactory } from './api.js';
import { SinkEndpoint } from './endpoint.js';
import { CORE_SINK_KEYS } from '../config/replica-config.js';

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
  private readonly dispatcherEntries = new Map<string, { readonly plugin: string; readonly module: string }>();
  private loadedDispatchers: Promise<ReadonlyMap<string, PartitionDispatcherFactory>> | undefined;

  static fromPlugins(plugins: readonly PluginDescriptor[]): SinkRegistry {
    const registry = new SinkRegistry();
    for (const plugin of plugins) registry.addPlugin(plugin);
    return registry;
  }

  addPlugin(plugin: PluginDescriptor): void {
    const manifest = (plugin.pjson as { tidemark?: TidemarkPluginManifest }).tidemark;
    for (const [name, path] of Object.entries(manifest?.dispatchers ?? {})) {
      const existing = this.dispatcherEntries.get(name);
      if (!/^[a-z][a-z0-9-]*$/.test(name) || typeof path !== 'string' || (existing !== undefined && existing.plugin !== plugin.name)) {
        this.failures.set(`dispatcher:${name}`, `plugin ${plugin.name} declares an invalid or duplicate dispatcher "${name}" → ${String(path)}`);
        continue;
      }
      this.dispatcherEntries.set(name, { plugin: plugin.name, module: pathToFileURL(join(plugin.root, path)).href });
    }
    const sinks = manifest?.sinks;
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

  /** Loads the plugin module of a sink URI's scheme and returns its factory. */
  async factoryFor(sinkUri: string): Promise<SinkFactory<unknown>> {
    const entry = this.resolve(sinkUri);
    let loaded: { factory?: SinkFactory<unknown> };
    try {
      loaded = (await import(entry.module)) as { factory?: SinkFactory<unknown> };
    } catch (error) {
      throw new TidemarkError('ErrSinkUnknownScheme', `sink plugin ${entry.plugin} for "${entry.scheme}" could not be loaded from ${entry.module}: ${(error as Error).message}`, { cause: error });
    }
    const factory = loaded.factory;
    if (factory === undefined || typeof factory.parseConfig !== 'function' || typeof factory.create !== 'function') {
      throw new TidemarkError('ErrSinkUnknownScheme', `sink plugin ${entry.plugin} does not export a factory with parseConfig and create (${entry.module})`);
    }
    return factory;
  }

  /** The sink URI's plugin factory with the URI parsed by it (ErrSinkURIInvalid naming the URI otherwise). */
  async endpoint(sinkUri: string): Promise<SinkEndpoint> {
    return SinkEndpoint.of(await this.factoryFor(sinkUri), sinkUri);
  }

  /**
   * Validates a sink URI with its plugin's parseConfig (pure); errors become ErrSinkURIInvalid naming the URI.
   * With `sinkConfig` (the changefeed's `[sink]` section), also the plugin's validateSinkConfig, if it has one;
   * its errors become ErrConfigInvalid. A `[sink]` key that neither Tidemark nor the sink reads is ErrConfigUnknownKey.
   */
  async validate(sinkUri: string, sinkConfig?: Readonly<Record<string, unknown>>): Promise<unknown> {
    const { factory, config, scheme } = await this.endpoint(sinkUri);
    if (sinkConfig !== undefined) {
      const owned = factory.sinkConfigKeys ?? [];
      const unknown = Object.keys(sinkConfig).filter((k) => !(CORE_SINK_KEYS as readonly string[]).includes(k) && !owned.includes(k));
      if (unknown.length > 0) {
        const allowed = `${CORE_SINK_KEYS.join(', ')}${owned.length === 0 ? '' : `, and the ${scheme} sink's ${owned.join(', ')}`}`;
        throw new TidemarkError('ErrConfigUnknownKey', `unknown key "sink.${unknown.join('", "sink.')}" in the changefeed config for a ${scheme}:// sink; [sink] takes ${allowed}`, { details: { keys: unknown, section: 'sink' } });
      }
    }
    if (sinkConfig !== undefined && factory.validateSinkConfig !== undefined) {
      try {
        factory.validateSinkConfig(config, sinkConfig, this.dispatcherNames);
      } catch (error) {
        if (error instanceof TidemarkError) throw error;
        throw new TidemarkError('ErrConfigInvalid', `invalid [sink] config of the changefeed for ${scheme}://: ${(error as Error).message}`, { cause: error });
      }
    }
    return config;
  }

  /** Partition dispatchers the plugins ship, loaded once; a module that does not export `dispatcher` is an error naming it. */
  dispatchers(): Promise<ReadonlyMap<string, PartitionDispatcherFactory>> {
    this.loadedDispatchers ??= (async () => {
      const out = new Map<string, PartitionDispatcherFactory>();
      for (const [name, entry] of this.dispatcherEntries) {
        let loaded: { dispatcher?: PartitionDispatcherFactory };
        try {
          loaded = (await import(entry.module)) as { dispatcher?: PartitionDispatcherFactory };
        } catch (error) {
          throw new TidemarkError('ErrDispatcherUnavailable', `dispatcher "${name}" of plugin ${entry.plugin} could not be loaded from ${entry.module}: ${(error as Error).message}`, { cause: error });
        }
        if (typeof loaded.dispatcher?.create !== 'function') {
          throw new TidemarkError('ErrDispatcherUnavailable', `plugin ${entry.plugin} declares dispatcher "${name}" but ${entry.module} exports no \`dispatcher\` with create()`);
        }
        out.set(name, loaded.dispatcher);
      }
      return out;
    })();
    this.loadedDispatchers.catch(() => (this.loadedDispatchers = undefined));
    return this.loadedDispatchers;
  }

  get dispatcherNames(): string[] {
    return [...this.dispatcherEntries.keys()].sort();
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

