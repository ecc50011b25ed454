// The error codes: src/common/errors.ts (ErrorCodes), docs/errors.md and
// every MOSN_ERR_ string used in src/ must agree.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { ConfigError, ErrorCodes, MosnError, formatIssue, isMosnError } from '../../src/common/errors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOC = path.join(ROOT, 'docs/errors.md');
const CODE_RE = /MOSN_ERR_[A-Z0-9_]+/g;

interface DocEntry {
  code: string;
  line: number;
  body: string;
}

/** Every `### MOSN_ERR_…` section of the doc, with its text up to the next heading. */
function docEntries(): DocEntry[] {
  const lines = fs.readFileSync(DOC, 'utf8').split('\n');
  const entries: DocEntry[] = [];
  let current: DocEntry | undefined;
  lines.forEach((line, i) => {
    const heading = /^#{1,6}\s/.test(line);
    const m = /^###\s+(MOSN_ERR_[A-Z0-9_]+)\s*$/.exec(line);
    if (heading) current = undefined;
    if (m) {
      current = { code: m[1]!, line: i + 1, body: '' };
      entries.push(current);
    } else if (current) current.body += line + '\n';
  });
  return entries;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|mts|cts|js|mjs|json)$/.test(e.name) ? [p] : [];
  });
}

const codes = Object.keys(ErrorCodes);

void t.test('every code in ErrorCodes is documented in docs/errors.md', async (t) => {
  const documented = new Set(docEntries().map((e) => e.code));
  const missing = codes.filter((c) => !documented.has(c));
  t.same(missing, [], `codes missing from docs/errors.md: ${missing.join(', ') || 'none'}`);
});

void t.test('docs/errors.md lists no code the program does not have, and none twice', async (t) => {
  const entries = docEntries();
  t.ok(entries.length > 0, 'the doc parses into entries');
  const unknown = entries.filter((e) => !(e.code in ErrorCodes)).map((e) => `${e.code} (line ${e.line})`);
  t.same(unknown, [], `documented but not in ErrorCodes: ${unknown.join(', ') || 'none'}`);
  const seen = new Set<string>();
  const twice = entries.filter((e) => (seen.has(e.code) ? true : (seen.add(e.code), false))).map((e) => e.code);
  t.same(twice, [], 'no code documented twice');
});

void t.test('every documented code says what it means, where it appears and what to do', async (t) => {
  for (const e of docEntries()) {
    for (const field of ['Meaning', 'Appears in', 'What to do']) {
      t.match(e.body, new RegExp(`^- \\*\\*${field}:\\*\\* \\S`, 'm'), `${e.code}: ${field}`);
    }
  }
});

void t.test('every MOSN_ERR_ string in src/ is a code in ErrorCodes', async (t) => {
  const files = sourceFiles(path.join(ROOT, 'src'));
  t.ok(files.length > 10, `scanned ${files.length} files`);
  const unknown: string[] = [];
  let uses = 0;
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(CODE_RE)) {
      uses++;
      if (!(m[0] in ErrorCodes)) {
        const line = text.slice(0, m.index).split('\n').length;
        unknown.push(`${path.relative(ROOT, file)}:${line} ${m[0]}`);
      }
    }
  }
  t.ok(uses > codes.length, `found ${uses} uses`);
  t.same(unknown, [], `MOSN_ERR_ strings not in ErrorCodes: ${unknown.join(', ') || 'none'}`);
});

void t.test('codes are well formed and described', async (t) => {
  for (const [code, text] of Object.entries(ErrorCodes)) {
    t.match(code, /^MOSN_ERR_[A-Z0-9_]+$/, `${code} is well formed`);
    t.ok(text.length > 10 && text.endsWith('.'), `${code} has a sentence`);
  }
});

void t.test('MosnError and ConfigError carry their code', async (t) => {
  const e = new MosnError('MOSN_ERR_LISTEN', 'boom');
  t.ok(isMosnError(e));
  t.equal(e.code, 'MOSN_ERR_LISTEN');
  t.same(e.toJSON(), { code: 'MOSN_ERR_LISTEN', message: 'boom' });
  t.notOk(isMosnError(new Error('x')));
  const issue = { file: '/etc/mosn.yaml', line: 3, col: 5, path: 'listeners[0].address', message: 'bad' };
  const c = new ConfigError([issue, { ...issue, path: '' }]);
  t.equal(c.code, 'MOSN_ERR_CONFIG_INVALID');
  t.equal(formatIssue(issue), '/etc/mosn.yaml:3:5 listeners[0].address: bad');
  t.equal(c.message, '/etc/mosn.yaml:3:5 listeners[0].address: bad\n/etc/mosn.yaml:3:5 (root): bad');
});
