#!/usr/bin/env node
// The ceiling experiment of bench/RESULTS.md: the smallest HTTP/1.1 keep-alive
// proxies Node can run, with none of mosn-ts's features (no routing, metrics,
// timeouts, access log, error handling, migration) — GET/small bodies only.
// Measures what the design costs, not what a product can ship.
//
//   node scripts/minimal-proxy.cjs MODE PORT UPSTREAM_PORT WORKERS
//   MODE raw  both sides on Node's native llhttp binding (_http_common.HTTPParser),
//             the client side fed by parser.consume() (no JS 'data' events),
//             the upstream side by 'data' events; each response written in
//             one corked write
//        rawc raw, with the upstream parser reading its socket itself too
//             (parser.consume(), as mosn-ts's pool did until the seventh pass)
//        jsup the client side as raw; upstream reads land in one shared
//             buffer (net's onread) and the response is parsed in JS
//             (content-length only), head and body leaving in one write: the
//             prototype of src/worker/upstream/h1-response.ts
//        jsall jsup, and the client side too: its reads land in the same
//             shared buffer (net's onread switched on for an accepted socket:
//             the user-buffer mode Node gives sockets it connects) and each
//             request head is parsed in JS (bodiless requests only)
//        srv  http.Server + ServerResponse on the client side, the same raw
//             upstream client (mosn-ts's design since src/worker/upstream/h1-pool.ts)
// Workers share the port through node:cluster. Drive with wrk; compare CPU
// per request (/proc/PID/stat of the whole tree), not only req/s.
'use strict';
const cluster = require('node:cluster');
const net = require('node:net');
const http = require('node:http');
const { HTTPParser, methods } = require('_http_common');

const [mode, port, upPort, workers] = process.argv.slice(2);
if (!['raw', 'rawc', 'srv', 'jsup', 'jsall'].includes(mode) || !port || !upPort) {
  console.error('usage: minimal-proxy.cjs raw|rawc|jsup|jsall|srv PORT UPSTREAM_PORT [WORKERS]');
  process.exit(2);
}
if (cluster.isPrimary) {
  for (let i = 0; i < Number(workers ?? 2); i++) cluster.fork();
} else {
  // A normal exit on SIGINT, so `node --cpu-prof` writes each worker's profile.
  process.on('SIGINT', () => process.exit(0));
  const kHC = HTTPParser.kOnHeadersComplete | 0;
  const kB = HTTPParser.kOnBody | 0;
  const kMC = HTTPParser.kOnMessageComplete | 0;
  const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
  const idle = [];

  class Upstream {
    constructor() {
      this.cb = null;
      this.sock = net.connect({ port: Number(upPort), host: '127.0.0.1', noDelay: true });
      this.sock.on('error', () => undefined);
      this.p = new HTTPParser();
      this.p.initialize(HTTPParser.RESPONSE, {}, 0, 0);
      this.p[kHC] = (_maj, _min, headers, _m, _u, status, msg) => {
        this.cb.head(status, msg, headers);
        return 0;
      };
      this.p[kB] = (b) => this.cb.body(b);
      this.p[kMC] = () => {
        const cb = this.cb;
        this.cb = null;
        idle.push(this);
        cb.done();
      };
      if (mode === 'rawc') {
        // the upstream parser reads the socket itself, as mosn-ts's pool does
        this.p[HTTPParser.kOnExecute | 0] = () => undefined;
        this.sock.once('connect', () => this.p.consume(this.sock._handle));
      } else this.sock.on('data', (d) => this.p.execute(d));
    }
  }

  const requestHead = (method, url, headers, ip) => {
    let s = `${method} ${url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) if (!HOP.has(headers[i].toLowerCase())) s += `${headers[i]}: ${headers[i + 1]}\r\n`;
    return s + `X-Forwarded-For: ${ip}\r\nX-Forwarded-Proto: http\r\n\r\n`;
  };

  // jsup: the upstream read with net's onread (one shared buffer, no stream
  // 'data' events) and its response parsed in JS (content-length only).
  const RBUF = Buffer.allocUnsafe(65536);
  const CRLF2 = Buffer.from('\r\n\r\n');
  const idle2 = [];
  class Up2 {
    constructor() {
      this.cb = null;
      this.head = '';
      this.remaining = -1;
      this.parts = [];
      this.sock = net.connect({ port: Number(upPort), host: '127.0.0.1', noDelay: true, onread: { buffer: RBUF, callback: (n, b) => this.onRead(n, b) } });
      this.sock.on('error', () => undefined);
    }
    onRead(n, b) {
      let i = 0;
      while (i < n) {
        if (this.remaining < 0) {
          const e = b.indexOf(CRLF2, i);
          if (e < 0 || e + 4 > n) throw new Error('prototype: split head');
          const lines = b.latin1Slice(i, e).split('\r\n');
          let s = lines[0].replace(/^HTTP\/1\.[01]/, 'HTTP/1.1') + '\r\n';
          let cl = 0;
          for (let k = 1; k < lines.length; k++) {
            const l = lines[k];
            const c = l.indexOf(':');
            const name = l.slice(0, c).toLowerCase();
            if (name === 'content-length') cl = Number(l.slice(c + 1).trim());
            else if (HOP.has(name)) continue;
            s += l + '\r\n';
          }
          this.head = s + 'Connection: keep-alive\r\n\r\n';
          this.remaining = cl;
          this.parts.length = 0;
          i = e + 4;
        }
        const take = Math.min(this.remaining, n - i);
        if (take > 0) { this.parts.push(Buffer.from(b.buffer, b.byteOffset + i, take)); this.remaining -= take; i += take; }
        if (this.remaining === 0) {
          const hl = this.head.length;
          let total = hl;
          for (const p of this.parts) total += p.length;
          const out = Buffer.allocUnsafe(total);
          out.latin1Write(this.head, 0);
          let o = hl;
          for (const p of this.parts) { p.copy(out, o); o += p.length; }
          this.remaining = -1;
          const cb = this.cb;
          this.cb = null;
          idle2.push(this);
          cb.done(out);
        }
      }
    }
  }

  // The client side of raw, rawc and jsup: native llhttp fed by consume();
  // each request goes to an upstream from `take()`, which answers through `cb`.
  const serveClient = (c, take, cb) => {
    c.on('error', () => undefined);
    const p = new HTTPParser();
    p.initialize(HTTPParser.REQUEST, {}, 0, 0);
    let up = null;
    p[kHC] = (_maj, _min, headers, method, url) => {
      up = take();
      up.cb = cb;
      up.sock.write(requestHead(methods[method], url, headers, c.remoteAddress), 'latin1');
      return 0;
    };
    p[kB] = (b) => up.sock.write(b);
    p[kMC] = () => undefined;
    if (c._handle && c._handle.isStreamBase) {
      p.consume(c._handle);
      p[HTTPParser.kOnExecute | 0] = () => undefined;
    } else c.on('data', (d) => p.execute(d));
  };

  // jsall: the client's reads land in RBUF too (nothing keeps a view of it:
  // each read is handled before the next can arrive).
  const sym = (s, name) => Object.getOwnPropertySymbols(s).find((x) => x.description === name);
  const onClientRead = function (n, b) {
    const c = this;
    let i = 0;
    while (i < n) {
      const e = b.indexOf(CRLF2, i);
      if (e < 0 || e + 4 > n) throw new Error('prototype: split request head');
      const lines = b.latin1Slice(i, e).split('\r\n');
      const sp1 = lines[0].indexOf(' ');
      const sp2 = lines[0].indexOf(' ', sp1 + 1);
      const headers = [];
      for (let k = 1; k < lines.length; k++) {
        const l = lines[k];
        const colon = l.indexOf(':');
        headers.push(l.slice(0, colon), l.slice(colon + 1).trim());
      }
      const up = idle2.pop() ?? new Up2();
      up.cb = c.mosnCb;
      up.sock.write(requestHead(lines[0].slice(0, sp1), lines[0].slice(sp1 + 1, sp2), headers, c.remoteAddress), 'latin1');
      i = e + 4;
    }
  };
  if (mode === 'jsall') {
    net
      .createServer({ noDelay: true, pauseOnConnect: true }, (c) => {
        c.on('error', () => undefined);
        c.mosnCb = { done: (out) => c.write(out) };
        c[sym(c, 'kBuffer')] = RBUF;
        c[sym(c, 'kBufferCb')] = onClientRead;
        c._handle.useUserBuffer(RBUF);
        c.resume();
      })
      .listen(Number(port), '127.0.0.1');
  } else if (mode === 'jsup') {
    net
      .createServer({ noDelay: true }, (c) => {
        serveClient(c, () => idle2.pop() ?? new Up2(), { done: (out) => c.write(out) });
      })
      .listen(Number(port), '127.0.0.1');
  } else if (mode === 'raw' || mode === 'rawc') {
    net
      .createServer({ noDelay: true }, (c) => {
        let head = '';
        let body = [];
        serveClient(c, () => idle.pop() ?? new Upstream(), {
          head(status, msg, headers) {
            let s = `HTTP/1.1 ${status} ${msg}\r\n`;
            for (let i = 0; i < headers.length; i += 2) if (!HOP.has(headers[i].toLowerCase())) s += `${headers[i]}: ${headers[i + 1]}\r\n`;
            head = s + 'Connection: keep-alive\r\n\r\n';
            body = [];
          },
          body(b) {
            body.push(b);
          },
          done() {
            c.cork();
            c.write(head, 'latin1');
            for (const b of body) c.write(b);
            c.uncork();
          },
        });
      })
      .listen(Number(port), '127.0.0.1');
  } else {
    http
      .createServer({ keepAliveTimeout: 300_000 }, (req, res) => {
        const up = idle.pop() ?? new Upstream();
        up.cb = {
          head(status, msg, headers) {
            const h = [];
            for (let i = 0; i < headers.length; i += 2) if (!HOP.has(headers[i].toLowerCase())) h.push(headers[i], headers[i + 1]);
            res.writeHead(status, msg, h);
          },
          body(b) {
            res.write(b);
          },
          done() {
            res.end();
          },
        };
        up.sock.write(requestHead(req.method, req.url, req.rawHeaders, req.socket.remoteAddress), 'latin1');
        req.on('data', (b) => up.sock.write(b));
      })
      .listen(Number(port), '127.0.0.1');
  }
}
