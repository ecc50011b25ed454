// The config layer: load and validate a file into a frozen Config.

export { loadConfig, parseConfig } from './load.js';
export { ConfigSchema, DEFAULTS, configJsonSchema, type RawConfig } from './schema.js';
export { MAX_DURATION_MS, parseDuration } from './duration.js';
export { parseHostPort, type AddressResult } from './address.js';
export { ConfigError, formatIssue, type ConfigIssue } from '../common/errors.js';
export type * from './types.js';
