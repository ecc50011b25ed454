// Log rotation: the access log goes to a file; after the file is renamed
// and the supervisor gets SIGUSR1, every worker writes to a new file at the
// configured path. No line is lost or written twice.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { request } from '../helpers/clients.js';
import { startMosn, tempDir, type MosnProcess } from '../helpers/mosn.js';
import { waitFor } from '../helpers/wait.js';

interface AccessLine {
  pid: number;
  path: string;
  status: number;
  log: string;
}

function readLines(file: string): AccessLine[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .map((l) => JSON.parse(l) as AccessLine);
}

/** Sends fresh-connection requests to `prefix/N` until `until()` holds; returns how many. */
async function driveUntil(m: MosnProcess, prefix: string, until: () => boolean, what: string): Promise<number> {
  let n = 0;
  await waitFor(
    async () => {
      const r = await request({ port: m.port('web'), path: `${prefix}/${n}`, timeoutMs: 5000 });
      if (!r.ok || r.status !== 200) throw new Error(`request failed: ${r.error ?? r.status}`);
      n++;
      return until();
    },
    { timeoutMs: 20_000, intervalMs: 1, what },
  );
  return n;
}

void t.test('SIGUSR1 after a rename: new lines go to a new file at the configured path', async (t) => {
  const dir = tempDir();
  const file = path.join(dir, 'logs', 'access.log');
  const rotated = `${file}.1`;
  const m = await startMosn(
    {
      workers: 2,
      log: { level: 'info', access_log: file },
      listeners: [
        {
          name: 'web',
          address: '127.0.0.1:0',
          virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'ok' } }] }],
        },
      ],
    },
    { dir },
  );
  t.teardown(() => m.kill());
  const pids = m.workerPids();
  const byBothWorkers = (f: string, prefix: string): boolean => pids.every((p) => readLines(f).some((l) => l.pid === p && l.path.startsWith(prefix)));

  const before = await driveUntil(m, '/before', () => byBothWorkers(file, '/before'), 'both workers to log to the file');
  await waitFor(() => readLines(file).length === before, { what: `all ${before} lines in the file` });
  t.equal(m.accessLogs().length, 0, 'nothing on stdout');

  fs.renameSync(file, rotated);
  process.kill(m.pid, 'SIGUSR1');
  const after = await driveUntil(m, '/after', () => byBothWorkers(file, '/after'), 'both workers to write the new file');
  t.ok(fs.existsSync(file), 'a new file at the configured path');
  await waitFor(() => readLines(rotated).length + readLines(file).length === before + after, {
    what: `all ${before + after} lines across both files`,
  });

  const old = readLines(rotated);
  const cur = readLines(file);
  t.equal(old.filter((l) => l.path.startsWith('/before')).length, before, 'the renamed file kept every earlier line');
  t.equal(cur.filter((l) => l.path.startsWith('/before')).length, 0, 'no earlier line in the new file');
  const paths = [...old, ...cur].map((l) => l.path);
  t.equal(new Set(paths).size, paths.length, 'no line written twice');
  t.ok(cur.every((l) => l.log === 'access' && l.status === 200), 'the new file holds access lines');

  // Both workers have reopened: from now on the renamed file does not grow.
  const oldCount = old.length;
  const final = await driveUntil(m, '/final', () => readLines(file).filter((l) => l.path.startsWith('/final')).length >= 20, 'more lines');
  await waitFor(() => readLines(file).filter((l) => l.path.startsWith('/final')).length === final, { what: `all ${final} final lines` });
  t.equal(readLines(rotated).length, oldCount, 'the renamed file got nothing more');
  t.ok(
    m.logs().some((l) => l['msg'] === 'SIGUSR1: reopening access logs'),
    'the supervisor logged the reopen',
  );
});
