// Validates the parsed file against ConfigSchema and turns ajv's errors into
// one clear issue per problem: a union that failed says what it wanted, not
// what each branch disliked; a value of the wrong type reports only that.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ConfigSchema, type RawConfig } from './schema.js';
import type { Path, Segment, Target } from './source.js';
import { closest, didYouMean } from './suggest.js';

/** An issue located by path; load.ts turns it into a ConfigIssue. */
export interface PathIssue {
  readonly path: Path;
  readonly target: Target;
  readonly message: string;
}

let validator: ValidateFunction<RawConfig> | undefined;

function compile(): ValidateFunction<RawConfig> {
  // verbose: errors carry their schema, which holds our messages.
  const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
  // Annotations for humans (and VS Code); no validation of their own.
  ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
  ajv.addKeyword({ keyword: 'patternErrorMessage', schemaType: 'string' });
  return ajv.compile<RawConfig>(ConfigSchema);
}

/** Every schema problem in `data`; empty when `data` is a RawConfig. */
export function schemaIssues(data: unknown): PathIssue[] {
  validator ??= compile();
  if (validator(data)) return [];
  const errors = validator.errors ?? [];

  // A failed union reports once, for itself; drop what its branches said.
  const unions = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const inUnion = (e: ErrorObject): boolean => unions.some((u) => e.schemaPath.startsWith(`${u.schemaPath}/`));
  // A value of the wrong type gets that one message, nothing more.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type' && !inUnion(e)).map((e) => e.instancePath));
  const kept = errors.filter((e) => !inUnion(e) && (e.keyword === 'type' || !wrongType.has(e.instancePath)));

  // `adress: x` fails twice, as an unknown key and as a missing "address":
  // one problem, so the "did you mean" message stands for both.
  const misspelt = new Set(
    kept
      .filter((e) => e.keyword === 'additionalProperties')
      .map((e) => `${e.instancePath}/${closest(String(e.params.additionalProperty), knownKeys(e))}`),
  );
  return kept
    .filter((e) => e.keyword !== 'required' || !misspelt.has(`${e.instancePath}/${String(e.params.missingProperty)}`))
    .map((e) => toIssue(e, toPath(data, e.instancePath)));
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

function toIssue(e: ErrorObject, path: Path): PathIssue {
  const schema = isRecord(e.parentSchema) ? e.parentSchema : {};
  const params: Record<string, unknown> = e.params;
  const value = (message: string): PathIssue => ({ path, target: 'value', message });
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      return { path: [...path, key], target: 'key', message: `unknown key "${key}"${didYouMean(key, knownKeys(e))}` };
    }
    case 'required':
      return { path, target: 'parent', message: `missing required key "${String(params.missingProperty)}"` };
    case 'type': {
      const type = String(params.type);
      // `key:` with nothing after it parses as null.
      return value(`must be ${TYPE_NAMES[type] ?? type}${e.data === null ? ' (the value is empty)' : ''}`);
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String);
      const hint = typeof e.data === 'string' ? didYouMean(e.data, allowed) : '';
      return value(`must be one of: ${allowed.join(', ')}${hint}`);
    }
    case 'anyOf':
    case 'oneOf':
      return value(typeof schema.errorMessage === 'string' ? schema.errorMessage : 'has an invalid value');
    case 'pattern':
      if (e.data === '') return value('must not be empty');
      return value(typeof schema.patternErrorMessage === 'string' ? schema.patternErrorMessage : `must match the pattern ${String(params.pattern)}`);
    case 'minimum':
      return value(`must be at least ${String(params.limit)}`);
    case 'maximum':
      return value(`must be at most ${String(params.limit)}`);
    case 'minItems':
      return value(params.limit === 1 ? 'must not be empty' : `must have at least ${String(params.limit)} items`);
    case 'minLength':
      return value(params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters long`);
    default:
      return value(e.message ?? `fails the "${e.keyword}" rule`);
  }
}

/** A JSON pointer into `data` as path segments; array indexes become numbers. */
function toPath(data: unknown, pointer: string): Segment[] {
  if (pointer === '') return [];
  const path: Segment[] = [];
  let node = data;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    const seg: Segment = Array.isArray(node) ? Number(key) : key;
    path.push(seg);
    node = (node as Record<Segment, unknown> | undefined)?.[seg];
  }
  return path;
}

/** The keys allowed where an additionalProperties error occurred. */
function knownKeys(e: ErrorObject): string[] {
  const properties = isRecord(e.parentSchema) ? e.parentSchema.properties : undefined;
  return isRecord(properties) ? Object.keys(properties) : [];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}
