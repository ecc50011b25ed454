// Fake release directories for upgrade-failure tests, and a /proc scan to
// find processes started from one (orphans after a rollback).
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from './mosn.js';

export type FakeWorker =
  /** Exits with code 3 at once. */
  | 'crash'
  /** Stays alive forever and never says ready (ignores IPC, disconnects and SIGTERM). */
  | 'hang'
  /** No dist/worker/main.js at all (an incomplete release). */
  | 'missing';

const WORKERS: Record<Exclude<FakeWorker, 'missing'>, string> = {
  crash: `process.exit(3);\n`,
  hang: [
    `// Never reports ready; keeps running until SIGKILL.`,
    `process.on('message', () => undefined);`,
    `process.on('disconnect', () => undefined);`,
    `process.on('SIGTERM', () => undefined);`,
    `setInterval(() => undefined, 1000);`,
    ``,
  ].join('\n'),
};

/**
 * A release directory: a copy of this build (its supervisor is real, so an
 * upgrade really hands over to it) whose worker entry point is replaced.
 */
export function fakeRelease(kind: FakeWorker, version = `9.9.9-${kind}`): string {
  const dir = tempDir(`mosn-fake-release-${kind}-`);
  fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...pkg, version }, null, 2));
  if (kind === 'missing') fs.rmSync(path.join(dir, 'dist/worker/main.js'));
  else fs.writeFileSync(path.join(dir, 'dist/worker/main.js'), WORKERS[kind]);
  return dir;
}

/** A release directory running this build, optionally under another Node binary (release.json). */
export function copyRelease(opts: { node?: string; version?: string } = {}): string {
  const dir = tempDir('mosn-release-');
  fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...pkg, version: opts.version ?? String(pkg['version']) }, null, 2));
  if (opts.node) fs.writeFileSync(path.join(dir, 'release.json'), JSON.stringify({ node: opts.node }, null, 2));
  return dir;
}

/** Pids of live processes whose command line mentions `needle` (this process excluded). */
export function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid) continue;
    let cmd: string;
    try {
      cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ');
      // A zombie has an empty cmdline and is no longer running anything.
      if (fs.readFileSync(`/proc/${e}/stat`, 'utf8').split(') ')[1]?.startsWith('Z')) continue;
    } catch {
      continue;
    }
    if (cmd.includes(needle)) out.push(pid);
  }
  return out;
}

/**
 * Pids of live Node processes running `script` (their argv[1]). Unlike
 * processesMentioning, this skips the short-lived `/bin/sh -c '"$0" "$@" &'
 * that starts a successor supervisor and names the script among its
 * arguments: it exits at once, so a pid taken from it may be gone already.
 */
export function processesRunning(script: string): number[] {
  return processesMentioning(script).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === script;
    } catch {
      return false;
    }
  });
}

/** SIGKILLs what is left of a fake release (teardown only). */
export function killMentioning(needle: string): void {
  for (const pid of processesMentioning(needle)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}
