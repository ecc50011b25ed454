// The JSON Schema: documented everywhere, closed everywhere, and the copy
// committed in schema/ matches the source.

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import t from 'tap';
import { parse } from 'yaml';
import { configJsonSchema, parseConfig } from '../../src/config/index.js';

const COMMITTED = fileURLToPath(new URL('../../schema/mosn.schema.json', import.meta.url));
const FULL = fileURLToPath(new URL('fixtures/full.yaml', import.meta.url));

type Json = Record<string, unknown>;
const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every subschema that describes a config value, with its JSON path. */
function fields(schema: Json, at = '$'): [string, Json][] {
  const out: [string, Json][] = [];
  if (isJson(schema.properties)) {
    for (const [key, sub] of Object.entries(schema.properties)) {
      if (isJson(sub)) out.push([`${at}.${key}`, sub], ...fields(sub, `${at}.${key}`));
    }
  }
  if (isJson(schema.items)) out.push([`${at}[]`, schema.items], ...fields(schema.items, `${at}[]`));
  return out;
}

void t.test('every field has a description', async (t) => {
  const all = fields(configJsonSchema());
  t.ok(all.length > 60, `${all.length} fields`);
  for (const [at, sub] of all) t.ok(typeof sub.description === 'string' && sub.description.length > 0, `${at} has a description`);
});

void t.test('every object rejects unknown keys', async (t) => {
  const schema = configJsonSchema();
  for (const [at, sub] of [['$', schema] as [string, Json], ...fields(schema)]) {
    if (sub.type === 'object') t.equal(sub.additionalProperties, false, `${at} is closed`);
  }
});

void t.test('schema/mosn.schema.json is up to date (npm run build regenerates it)', async (t) => {
  const committed = await readFile(COMMITTED, 'utf8');
  t.equal(committed, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
});

void t.test('the emitted schema is a valid draft-07 schema that accepts the full example', async (t) => {
  const schema = JSON.parse(await readFile(COMMITTED, 'utf8')) as Json;
  t.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  t.equal(schema.title, 'mosn-ts configuration');
  // As an editor would use it: no knowledge of our annotation keywords.
  const ajv = new Ajv({ strict: false });
  const validate = ajv.compile(schema);
  const data: unknown = parse(await readFile(FULL, 'utf8'), { merge: true });
  t.ok(validate(data), JSON.stringify(validate.errors));
  t.notOk(validate({ listeners: [], bogus: 1 }));
});

const DOCS = fileURLToPath(new URL('../../docs/config.md', import.meta.url));

void t.test('docs/config.md documents every field', async (t) => {
  const docs = await readFile(DOCS, 'utf8');
  const keys = new Set(fields(configJsonSchema()).map(([at]) => at.replace(/\[\]$/, '').split('.').pop()!));
  // As `key`, or inside a dotted name: `timeouts.idle`.
  const documented = (key: string): boolean => new RegExp(`\`(?:[a-z_]+\\.)?${key}(?:\\.[a-z_]+)?\``).test(docs);
  for (const key of keys) t.ok(documented(key), `${key} is documented`);
});

void t.test('the full example in docs/config.md is valid', async (t) => {
  const docs = await readFile(DOCS, 'utf8');
  const example = /```yaml\n# \/etc\/mosn\/mosn\.yaml\n([\s\S]*?)```/.exec(docs)?.[1];
  t.ok(example, 'found the example');
  const config = parseConfig(example ?? '', '/etc/mosn/mosn.yaml');
  t.strictSame(config.clusters.map((c) => c.name), ['app', 'users', 'pg']);
});
