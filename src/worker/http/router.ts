// Virtual host and route selection. Built once per config; lookups by Host
// are cached because the set of hosts a listener sees is small.
import type { IncomingHttpHeaders } from 'node:http';
import type { Route, RouteMatch, VirtualHost } from '../../config/types.js';

/** Whatever carries the request headers; read only by routes that match on headers. */
export interface HeaderSource {
  readonly headers: IncomingHttpHeaders;
}

interface CompiledRoute {
  readonly route: Route;
  readonly test: (path: string, msg: HeaderSource) => boolean;
}

export interface CompiledVhost {
  readonly vhost: VirtualHost;
  readonly routes: readonly CompiledRoute[];
}

export interface RouteResult {
  readonly vhost: VirtualHost;
  readonly route: Route;
}

function compileMatch(m: RouteMatch): CompiledRoute['test'] {
  let pathTest: (p: string) => boolean;
  if (m.path !== undefined) {
    const want = m.path;
    pathTest = (p) => p === want;
  } else if (m.regex !== undefined) {
    const re = new RegExp(m.regex);
    pathTest = (p) => re.test(p);
  } else {
    const prefix = m.prefix ?? '/';
    pathTest = prefix === '/' ? () => true : (p) => p.startsWith(prefix);
  }
  if (m.headers.length === 0) return (p) => pathTest(p);
  const headerTests = m.headers.map((h) => {
    const re = h.regex !== undefined ? new RegExp(h.regex) : undefined;
    return (msg: HeaderSource): boolean => {
      const raw = msg.headers[h.name];
      const value = Array.isArray(raw) ? raw.join(',') : raw;
      let ok: boolean;
      if (h.exact !== undefined) ok = value === h.exact;
      else if (re) ok = value !== undefined && re.test(value);
      else if (h.present === false) ok = value === undefined;
      else ok = value !== undefined;
      return h.invert ? !ok : ok;
    };
  });
  return (p, msg) => pathTest(p) && headerTests.every((t) => t(msg));
}

/** Strips the query string: routes match on the path only. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export class Router {
  readonly #exact = new Map<string, CompiledVhost>();
  readonly #suffixes: { suffix: string; vh: CompiledVhost }[] = [];
  readonly #wildcard: CompiledVhost | undefined;
  readonly #cache = new Map<string, CompiledVhost | null>();

  constructor(vhosts: readonly VirtualHost[]) {
    let wildcard: CompiledVhost | undefined;
    for (const vhost of vhosts) {
      const vh: CompiledVhost = { vhost, routes: vhost.routes.map((route) => ({ route, test: compileMatch(route.match) })) };
      for (const d of vhost.domains) {
        if (d === '*') wildcard ??= vh;
        else if (d.startsWith('*.')) this.#suffixes.push({ suffix: d.slice(1), vh });
        else if (!this.#exact.has(d)) this.#exact.set(d, vh);
      }
    }
    // Longest suffix wins, as in Envoy.
    this.#suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
    this.#wildcard = wildcard;
  }

  /** Host header value → virtual host, or undefined. */
  vhostFor(hostHeader: string | undefined): CompiledVhost | undefined {
    const key = hostHeader ?? '';
    const cached = this.#cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const host = stripPort(key.toLowerCase());
    let vh = this.#exact.get(host);
    if (!vh) vh = this.#suffixes.find((s) => host.endsWith(s.suffix))?.vh;
    vh ??= this.#wildcard;
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(key, vh ?? null);
    return vh;
  }

  route(hostHeader: string | undefined, url: string, msg: HeaderSource): RouteResult | undefined {
    const vh = this.vhostFor(hostHeader);
    if (!vh) return undefined;
    const path = pathOf(url);
    for (const r of vh.routes) if (r.test(path, msg)) return { vhost: vh.vhost, route: r.route };
    return undefined;
  }
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}
