export * from './core/errors/index.js';
export { buildInfo, type BuildInfo } from './core/build-info/index.js';
