// Durations in the config file: "250ms", "10s", "2m", "1h", "1.5s", "1m30s",
// or an integer number of milliseconds.

import { DURATION_PATTERN } from './schema.js';

/** The longest delay a Node.js timer supports (2^31 - 1 ms, about 24.8 days). */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const WHOLE = new RegExp(DURATION_PATTERN);
const GROUP = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g;

/**
 * Milliseconds (rounded to an integer), or undefined when `value` is not a
 * duration. The result may exceed MAX_DURATION_MS (even be Infinity for
 * absurdly long digit strings); the semantic checks reject those.
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string' || !WHOLE.test(value)) return undefined;
  let ms = 0;
  for (const [, amount, unit] of value.matchAll(GROUP)) ms += Number(amount) * (UNIT_MS[unit ?? ''] ?? 0);
  return Math.round(ms);
}

