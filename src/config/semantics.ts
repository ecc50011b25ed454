// Rules the schema cannot express: exactly-one-of choices, references to
// clusters, unique names and addresses, address syntax, regular expressions,
// duration limits.
//
// These run on the parsed file even when it failed the schema, so one run
// lists every problem. So nothing here trusts the shape of the data: each
// rule looks only at values of the type it expects and leaves the rest to
// the schema's messages.

import { Buffer } from 'node:buffer';
import path from 'node:path';
import { parseHostPort } from './address.js';
import { MAX_DURATION_MS, parseDuration } from './duration.js';
import type { PathIssue } from './schema-issues.js';
import { DEFAULTS } from './schema.js';
import type { Path, Target } from './source.js';
import { didYouMean } from './suggest.js';

/** Longest path a Unix socket address can hold on Linux (sun_path is 108 bytes, NUL included). */
export const MAX_SOCKET_PATH_BYTES = 107;

type Obj = Readonly<Record<string, unknown>>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const items = (v: unknown): readonly unknown[] => (Array.isArray(v) ? v : []);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const has = (o: Obj, key: string): boolean => Object.hasOwn(o, key);

export interface SemanticContext {
  /** Absolute path of the config file. */
  readonly file: string;
  /** Line of the node at `path`, for "first defined at line N". */
  line(path: Path): number;
}

export function semanticIssues(data: unknown, ctx: SemanticContext): PathIssue[] {
  const issues: PathIssue[] = [];
  if (isObj(data)) new Checker(ctx, issues).config(data);
  return issues;
}

class Checker {
  readonly #ctx: SemanticContext;
  readonly #issues: PathIssue[];
  #clusters = new Set<string>();

  constructor(ctx: SemanticContext, issues: PathIssue[]) {
    this.#ctx = ctx;
    this.#issues = issues;
  }

  config(c: Obj): void {
    this.#socketPath(c.control_socket);
    const admin = isObj(c.admin) ? c.admin : {};
    const adminAddress = this.#address(['admin', 'address'], admin.address ?? DEFAULTS.admin.address, 0);
    if (isObj(c.upgrade)) {
      this.#duration(['upgrade', 'ready_timeout'], c.upgrade.ready_timeout, true);
      this.#duration(['upgrade', 'drain_timeout'], c.upgrade.drain_timeout, true);
    }
    this.#clustersSection(c.clusters);
    this.#listenersSection(c.listeners, adminAddress);
  }

  #clustersSection(clusters: unknown): void {
    const names = new Map<string, Path>();
    items(clusters).forEach((c, i) => {
      if (!isObj(c)) return;
      const at: Path = ['clusters', i];
      this.#unique(names, c.name, [...at, 'name'], 'cluster name');
      items(c.endpoints).forEach((e, j) => this.#address([...at, 'endpoints', j], e, 1));
      this.#duration([...at, 'connect_timeout'], c.connect_timeout, true);
      this.#duration([...at, 'idle_timeout'], c.idle_timeout, false);
      this.#duration([...at, 'headers_timeout'], c.headers_timeout, false);
    });
    this.#clusters = new Set(names.keys());
  }

  #listenersSection(listeners: unknown, adminAddress: string | undefined): void {
    const names = new Map<string, Path>();
    /** Canonical address -> who uses it. Port 0 (ephemeral) may repeat. */
    const addresses = new Map<string, string>();
    if (adminAddress !== undefined && !adminAddress.endsWith(':0')) addresses.set(adminAddress, 'the admin endpoint');

    items(listeners).forEach((l, i) => {
      if (!isObj(l)) return;
      const at: Path = ['listeners', i];
      const name = text(l.name);
      this.#unique(names, name, [...at, 'name'], 'listener name');

      const address = this.#address([...at, 'address'], l.address, 0);
      if (address !== undefined && !address.endsWith(':0')) {
        const user = addresses.get(address);
        if (user === undefined) addresses.set(address, `listener "${name ?? i}"`);
        else this.#report([...at, 'address'], 'value', `address ${address} is already used by ${user}`);
      }

      const timeouts = isObj(l.timeouts) ? l.timeouts : {};
      this.#duration([...at, 'timeouts', 'idle'], timeouts.idle, false);
      this.#duration([...at, 'timeouts', 'request_headers'], timeouts.request_headers, false);

      const protocol = l.protocol ?? DEFAULTS.listener.protocol;
      if (protocol === 'tcp') {
        if (has(l, 'virtual_hosts')) this.#report([...at, 'virtual_hosts'], 'key', 'only allowed on http listeners');
        if (has(timeouts, 'request_headers')) {
          this.#report([...at, 'timeouts', 'request_headers'], 'key', 'only allowed on http listeners');
        }
        if (!has(l, 'cluster')) this.#report(at, 'parent', 'missing required key "cluster" (a tcp listener proxies to one cluster)');
        else this.#clusterRef([...at, 'cluster'], l.cluster);
      } else if (protocol === 'http') {
        if (has(l, 'cluster')) {
          this.#report([...at, 'cluster'], 'key', 'only allowed on tcp listeners; http listeners route to clusters through virtual_hosts');
        }
        if (!has(l, 'virtual_hosts')) this.#report(at, 'parent', 'missing required key "virtual_hosts" (an http listener needs at least one)');
      }
      this.#virtualHosts([...at, 'virtual_hosts'], l.virtual_hosts);
    });
  }

  #virtualHosts(at: Path, vhosts: unknown): void {
    const names = new Map<string, Path>();
    /** Lower-cased domain -> the virtual host that has it. */
    const domains = new Map<string, { index: number; name: string }>();
    items(vhosts).forEach((v, i) => {
      if (!isObj(v)) return;
      const name = text(v.name);
      this.#unique(names, name, [...at, i, 'name'], 'virtual host name');
      items(v.domains).forEach((d, j) => {
        if (typeof d !== 'string') return;
        const domain = d.toLowerCase();
        const owner = domains.get(domain);
        if (owner === undefined) domains.set(domain, { index: i, name: name ?? String(i) });
        else if (owner.index === i) this.#report([...at, i, 'domains', j], 'value', `duplicate domain "${domain}" in this virtual host`);
        else this.#report([...at, i, 'domains', j], 'value', `domain "${domain}" is already served by virtual host "${owner.name}" of this listener`);
      });
      const routeNames = new Map<string, Path>();
      items(v.routes).forEach((r, j) => {
        if (!isObj(r)) return;
        const routeAt: Path = [...at, i, 'routes', j];
        this.#unique(routeNames, r.name, [...routeAt, 'name'], 'route name');
        this.#route(routeAt, r);
      });
    });
  }

  #route(at: Path, r: Obj): void {
    const match = isObj(r.match) ? r.match : undefined;
    if (match !== undefined) {
      this.#exactlyOne([...at, 'match'], match, ['prefix', 'path', 'regex'], 'a match');
      this.#regex([...at, 'match', 'regex'], match.regex);
      items(match.headers).forEach((h, i) => {
        if (!isObj(h)) return;
        const hAt: Path = [...at, 'match', 'headers', i];
        this.#atMostOne(hAt, h, ['exact', 'regex', 'present'], 'a header matcher');
        this.#regex([...hAt, 'regex'], h.regex);
      });
    }

    this.#exactlyOne(at, r, ['route', 'direct_response', 'redirect'], 'a route');
    if (isObj(r.route)) {
      this.#clusterRef([...at, 'route', 'cluster'], r.route.cluster);
      this.#duration([...at, 'route', 'timeout'], r.route.timeout, false);
    }
    if (isObj(r.redirect)) this.#atMostOne([...at, 'redirect'], r.redirect, ['path', 'prefix_rewrite'], 'a redirect');

    // A regex match has no matched prefix to replace.
    if (match !== undefined && has(match, 'regex')) {
      for (const action of ['route', 'redirect']) {
        const o = r[action];
        if (isObj(o) && has(o, 'prefix_rewrite')) this.#report([...at, action, 'prefix_rewrite'], 'key', 'needs a prefix or path match, not a regex');
      }
    }
  }

  #exactlyOne(at: Path, o: Obj, keys: readonly string[], owner: string): void {
    if (keys.some((k) => has(o, k))) this.#conflicts(at, o, keys, `${owner} takes exactly one of ${keys.join(', ')}`);
    else this.#report(at, 'parent', `missing one of: ${keys.join(', ')} (${owner} takes exactly one)`);
  }

  #atMostOne(at: Path, o: Obj, keys: readonly string[], owner: string): void {
    this.#conflicts(at, o, keys, `${owner} takes at most one of ${keys.join(', ')}`);
  }

  /** Reports every key of `keys` in `o` after the first one. */
  #conflicts(at: Path, o: Obj, keys: readonly string[], rule: string): void {
    const [first, ...extra] = keys.filter((k) => has(o, k));
    for (const key of extra) this.#report([...at, key], 'key', `cannot be combined with "${first}": ${rule}`);
  }

  /** Reports a `name` already in `seen` (name -> where it was first defined). */
  #unique(seen: Map<string, Path>, name: unknown, at: Path, what: string): void {
    if (typeof name !== 'string') return;
    const first = seen.get(name);
    if (first === undefined) seen.set(name, at);
    else this.#report(at, 'value', `duplicate ${what} "${name}" (first defined at line ${this.#ctx.line(first)})`);
  }

  #clusterRef(at: Path, name: unknown): void {
    if (typeof name !== 'string' || name === '' || this.#clusters.has(name)) return;
    const hint = this.#clusters.size === 0 ? ' (no clusters are defined)' : didYouMean(name, this.#clusters);
    this.#report(at, 'value', `cluster "${name}" is not defined${hint}`);
  }

  #regex(at: Path, source: unknown): void {
    if (typeof source !== 'string') return;
    try {
      new RegExp(source);
    } catch (e) {
      // "Invalid regular expression: /(/: Unterminated group" -> "Unterminated group"
      const reason = e instanceof Error ? e.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '') : String(e);
      this.#report(at, 'value', `invalid regular expression: ${reason}`);
    }
  }

  /** Checks the address at `at` and returns its canonical text, if it is one. */
  #address(at: Path, value: unknown, minPort: 0 | 1): string | undefined {
    if (typeof value !== 'string' || value === '') return undefined;
    const parsed = parseHostPort(value, minPort);
    if (parsed.ok) return parsed.value.text;
    this.#report(at, 'value', parsed.error);
    return undefined;
  }

  #duration(at: Path, value: unknown, positive: boolean): void {
    const ms = parseDuration(value);
    if (ms === undefined) return; // missing, or the schema already said why
    if (positive && ms === 0) this.#report(at, 'value', 'must be greater than 0');
    else if (ms > MAX_DURATION_MS) this.#report(at, 'value', `must be at most ${MAX_DURATION_MS}ms (about 24.8 days)`);
  }

  #socketPath(value: unknown): void {
    if (typeof value !== 'string' || value === '') return;
    const resolved = path.resolve(path.dirname(this.#ctx.file), value);
    const bytes = Buffer.byteLength(resolved);
    if (bytes > MAX_SOCKET_PATH_BYTES) {
      this.#report(['control_socket'], 'value', `socket path "${resolved}" is ${bytes} bytes long; Unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}`);
    }
  }

  #report(path: Path, target: Target, message: string): void {
    this.#issues.push({ path, target, message });
  }
}
