// Loading a config file: parse (YAML, or JSON as YAML), validate once up
// front, report every problem at once with its line and column, and return
// a deeply frozen Config.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, isScalar, parseDocument } from 'yaml';
import { ConfigError, MosnError, errorMessage, type ConfigIssue } from '../common/errors.js';
import { normalise } from './normalise.js';
import { schemaIssues, type PathIssue } from './schema-issues.js';
import type { RawConfig } from './schema.js';
import { semanticIssues } from './semantics.js';
import { SourceMap, formatPath } from './source.js';
import type { Config } from './types.js';

/**
 * Parses and validates config text. `file` (absolute) names the file in
 * messages and anchors relative paths. Throws ConfigError listing every
 * problem, sorted by position.
 */
export function parseConfig(text: string, file: string): Config {
  const lines = new LineCounter();
  // A byte-order mark would shift every column on line 1.
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), {
    lineCounter: lines,
    prettyErrors: false, // we position errors ourselves
    uniqueKeys: true,
    merge: true, // `<<: *defaults` is handy for clusters that share settings
  });

  if (doc.errors.length > 0) {
    // The tree is unreliable after a syntax error: report those alone.
    throw new ConfigError(
      sortIssues(
        doc.errors.map((e) => ({ file, ...lines.linePos(e.pos[0]), path: '', message: `invalid YAML: ${e.message}` })),
      ),
    );
  }
  // Nothing, only comments, `---` or `~`.
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) throw new ConfigError([{ file, line: 1, col: 1, path: '', message: 'config is empty' }]);

  let data: unknown;
  try {
    data = doc.toJS();
  } catch (e) {
    // e.g. too many aliases (a "billion laughs" document)
    throw new ConfigError([{ file, line: 1, col: 1, path: '', message: `invalid YAML: ${errorMessage(e)}` }]);
  }
  const source = new SourceMap(doc, lines);
  const found: PathIssue[] = [
    ...schemaIssues(data),
    ...semanticIssues(data, { file, line: (p) => source.line(p) }),
  ];
  if (found.length > 0) {
    const issues = found.map((i): ConfigIssue => ({ file, ...source.locate(i.path, i.target), path: formatPath(i.path), message: i.message }));
    throw new ConfigError(sortIssues(dedupe(issues)));
  }
  return deepFreeze(normalise(data as RawConfig, file));
}

/** Reads `file` and parses it with parseConfig. */
export async function loadConfig(file: string): Promise<Config> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (e) {
    throw new MosnError('MOSN_ERR_CONFIG_READ', `cannot read config ${absolute}: ${errorMessage(e)}`, { cause: e });
  }
  return parseConfig(text, absolute);
}

function dedupe(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const id = `${i.line}:${i.col} ${i.path} ${i.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** By line, then column; ties keep the order they were found in. */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.col - b.col);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
