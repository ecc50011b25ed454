#!/usr/bin/env node
// mosnctl [--socket PATH | -c FILE] COMMAND [--json]
// Talks to a running supervisor over its control socket.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { controlRequest, CONTROL_COMMANDS, type ControlCommand } from '../common/control.js';
import { errorMessage, isMosnError, MosnError } from '../common/errors.js';
import { DEFAULTS } from '../config/schema.js';
import { parseArgs, UsageError } from './args.js';

const DEFAULT_SOCKET = '/run/mosn/mosn.sock';

const USAGE = `usage: mosnctl [--socket PATH | -c FILE] COMMAND [--json]
commands:
  status               generations, workers, listeners, connections
  stop                 graceful stop within the drain timeout
  reload               re-read the config file and apply it (blocks until done)
  upgrade [RELEASE]    hand the service over to a release directory (blocks)
options:
  --socket PATH        control socket (default ${DEFAULT_SOCKET}, or $MOSN_CONTROL_SOCKET)
  -c, --config FILE    take the control socket from this config file
  --json               print the raw JSON result
`;

interface StatusResult {
  pid: number;
  version: string;
  node: string;
  phase: string;
  started_at: string;
  config_file: string;
  admin: { address: string; port: number } | null;
  generation: number | null;
  generations: { id: number; state: string; version?: string; node?: string; workers: { slot: number; pid: number; phase: string; connections: Record<string, number> }[] }[];
  listeners: { name: string; protocol: string; address: string; port: number }[];
  connections: Record<string, number>;
  migrated?: Record<string, number>;
  reload_in_progress?: string | null;
  last_reload?: {
    kind: string;
    ok: boolean;
    at: string;
    duration_ms: number;
    generation?: number;
    migrated?: number;
    remaining?: number;
    error?: { code: string; message: string };
  } | null;
}

/** What reload/upgrade progress events and results carry (docs/control-protocol.md). */
interface ReloadInfo {
  phase?: string;
  generation?: number;
  workers?: number;
  ready?: number;
  leaving?: number;
  migrated?: number;
  remaining?: number;
  duration_ms?: number;
  version?: string;
  old_generation_exited?: boolean;
}

/** One line for a progress event on a terminal. */
function formatProgress(cmd: string, p: ReloadInfo): string {
  const parts = [`${cmd}: ${p.phase ?? ''}`];
  if (p.generation !== undefined) parts.push(`generation ${p.generation}`);
  if (p.ready !== undefined) parts.push(`workers ready ${p.ready}/${p.workers ?? '?'}`);
  if (p.leaving !== undefined) parts.push(`moving connections out of ${p.leaving} old workers`);
  if (p.migrated !== undefined) parts.push(`migrated ${p.migrated}, draining ${p.remaining ?? 0}`);
  return parts.join(', ');
}

function formatResult(cmd: string, result: unknown): string {
  if (cmd !== 'reload' && cmd !== 'upgrade') return `${cmd}: ok ${JSON.stringify(result)}\n`;
  const r = result as ReloadInfo;
  const exited = r.old_generation_exited ? 'old generation exited' : 'old generation still draining';
  return `${cmd}: ok in ${r.duration_ms ?? '?'} ms: generation ${r.generation ?? '?'} (${r.version ?? '?'}) serving; migrated ${r.migrated ?? 0} connections, ${r.remaining ?? 0} draining; ${exited}\n`;
}

function formatStatus(s: StatusResult): string {
  const up = Math.round((Date.now() - Date.parse(s.started_at)) / 1000);
  const lines = [
    `mosn-ts ${s.version} (node ${s.node})  pid ${s.pid}  phase ${s.phase}  up ${up}s`,
    `config   ${s.config_file}`,
    `admin    ${s.admin ? `${s.admin.address}:${s.admin.port}` : '-'}`,
    `connections  active ${s.connections['active'] ?? 0}  idle ${s.connections['idle'] ?? 0}  in-request ${s.connections['in_request'] ?? 0}  tunnel ${s.connections['tunnel'] ?? 0}`,
    'listeners',
    ...s.listeners.map((l) => `  ${l.name.padEnd(16)} ${l.protocol.padEnd(5)} ${l.address}:${l.port}`),
  ];
  if (s.migrated) lines.splice(4, 0, `migrated     http ${s.migrated['http'] ?? 0}  tcp ${s.migrated['tcp'] ?? 0}  tunnel ${s.migrated['tunnel'] ?? 0}  (since start)`);
  const draining = s.generations.filter((g) => g.state === 'draining').reduce((n, g) => n + g.workers.reduce((m, w) => m + (w.connections['active'] ?? 0), 0), 0);
  if (draining > 0) lines.splice(4, 0, `draining     ${draining} connections in old generations`);
  if (s.reload_in_progress) lines.push(`reload       ${s.reload_in_progress} in progress`);
  const lr = s.last_reload;
  if (lr) {
    lines.push(
      lr.ok
        ? `last ${lr.kind}  ok at ${lr.at} in ${lr.duration_ms} ms: generation ${lr.generation ?? '?'}, migrated ${lr.migrated ?? 0}, draining ${lr.remaining ?? 0}`
        : `last ${lr.kind}  FAILED at ${lr.at}: ${lr.error?.message.split('\n')[0] ?? '?'} [${lr.error?.code ?? '?'}]`,
    );
  }
  for (const g of s.generations) {
    lines.push(`generation ${g.id} (${g.state})`);
    if (g.version) lines.push(`  release ${g.version}${g.node ? `, node ${g.node}` : ''}`);
    for (const w of g.workers) {
      lines.push(`  worker ${w.slot}  pid ${String(w.pid).padEnd(7)} ${w.phase.padEnd(9)} connections ${w.connections['active'] ?? 0}`);
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * The control socket a config file names (resolved as the loader does,
 * relative to the file). Only `control_socket` is read: a file with
 * unrelated mistakes, say one being edited for a reload, still leads to
 * the running supervisor, which then reports those mistakes itself.
 */
async function socketFromConfig(file: string): Promise<string> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw new MosnError('MOSN_ERR_CONFIG_READ', `cannot read config ${abs}: ${errorMessage(e)}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new MosnError('MOSN_ERR_CONFIG_INVALID', `${abs}: invalid YAML, cannot find control_socket: ${errorMessage(e)}`, { cause: e });
  }
  const raw = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>)['control_socket'] : undefined;
  if (raw !== undefined && (typeof raw !== 'string' || raw === '')) {
    throw new MosnError('MOSN_ERR_CONFIG_INVALID', `${abs}: control_socket must be a non-empty path`);
  }
  return path.resolve(path.dirname(abs), raw ?? DEFAULTS.control_socket);
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, new Set(['-c', '--config', '--socket', '-s']));
  if (args.flags.has('-h') || args.flags.has('--help') || args.positional[0] === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const cmd = args.positional[0];
  if (cmd === undefined) throw new UsageError('missing command');
  if (!CONTROL_COMMANDS.includes(cmd as ControlCommand)) throw new UsageError(`unknown command "${cmd}"`);
  const json = args.flags.has('--json');
  let socket = args.flags.get('--socket') ?? args.flags.get('-s');
  const configFlag = args.flags.get('-c') ?? args.flags.get('--config');
  if (typeof configFlag === 'string') socket = await socketFromConfig(configFlag);
  const socketPath = typeof socket === 'string' ? socket : (process.env['MOSN_CONTROL_SOCKET'] ?? DEFAULT_SOCKET);
  const reqArgs: Record<string, unknown> = {};
  if (cmd === 'upgrade' && args.positional[1]) reqArgs['release'] = path.resolve(args.positional[1]);
  const tty = process.stderr.isTTY && !json;
  const reply = await controlRequest(
    socketPath,
    { id: 1, command: cmd as ControlCommand, args: reqArgs },
    {
      timeoutMs: cmd === 'status' || cmd === 'stop' ? 10_000 : undefined,
      onProgress: (p) => {
        if (tty) process.stderr.write(`\r\x1b[K${formatProgress(cmd, p)}`);
      },
    },
  );
  if (tty) process.stderr.write('\r\x1b[K');
  if (!reply.ok) {
    if (json) process.stdout.write(JSON.stringify(reply, null, 2) + '\n');
    process.stderr.write(`mosnctl ${cmd}: ${reply.error.message} [${reply.error.code}]\n`);
    return 1;
  }
  if (json) process.stdout.write(JSON.stringify(reply.result, null, 2) + '\n');
  else if (cmd === 'status') process.stdout.write(formatStatus(reply.result as StatusResult));
  else process.stdout.write(formatResult(cmd, reply.result));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`mosnctl: ${err.message}\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`mosnctl: ${errorMessage(err)}${isMosnError(err) ? ` [${err.code}]` : ''}\n`);
    process.exitCode = 1;
  },
);
