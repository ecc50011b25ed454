#!/usr/bin/env node
// The ceiling experiment of bench/RESULTS.md: the smallest HTTP/1.1 keep-alive
// proxies Node can run, with none of mosn-ts's features (no routing, metrics,
// timeouts, access log, error handling, migration) — GET/small bodies only.
// Measures what the design costs, not what a product can ship.
//
//   node scripts/minimal-proxy.cjs MODE PORT UPSTREAM_PORT WORKERS
//   MODE raw  both sides on Node's native llhttp binding (_http_common.HTTPParser),
//             the client side fed by parser.consume() (no JS 'data' events),
//             each response written in one corked write
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
if (!['raw', 'srv'].includes(mode) || !port || !upPort) {
  console.error('usage: minimal-proxy.cjs raw|srv PORT UPSTREAM_PORT [WORKERS]');
  process.exit(2);
}
if (cluster.isPrimary) {
  for (let i = 0; i < Number(workers ?? 2); i++) cluster.fork();
} else {
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
      this.sock.on('data', (d) => this.p.execute(d));
    }
  }

  const requestHead = (method, url, headers, ip) => {
    let s = `${method} ${url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) if (!HOP.has(headers[i].toLowerCase())) s += `${headers[i]}: ${headers[i + 1]}\r\n`;
    return s + `X-Forwarded-For: ${ip}\r\nX-Forwarded-Proto: http\r\n\r\n`;
  };

  if (mode === 'raw') {
    net
      .createServer({ noDelay: true }, (c) => {
        c.on('error', () => undefined);
        const p = new HTTPParser();
        p.initialize(HTTPParser.REQUEST, {}, 0, 0);
        let up = null;
        let head = '';
        let body = [];
        const cb = {
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
            up = null;
          },
        };
        p[kHC] = (_maj, _min, headers, method, url) => {
          up = idle.pop() ?? new Upstream();
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
