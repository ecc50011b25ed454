// The HTTP requests the bench tools send to bench/lib/backend.ts: one table
// for bench:compare, bench:profile and bench:instructions.
export const HTTP_SCENARIOS = ['keepalive', 'chunked', 'large', 'upload', 'newconn'] as const;
export type HttpScenario = (typeof HTTP_SCENARIOS)[number];

export interface HttpShape {
  title: string;
  path: string;
  method: 'GET' | 'POST';
  bodyBytes: number;
  /** A new connection per request (`Connection: close`). */
  close: boolean;
}

export const HTTP_SHAPES: Record<HttpScenario, HttpShape> = {
  keepalive: { title: 'HTTP/1.1 keep-alive, small responses', path: '/', method: 'GET', bodyBytes: 0, close: false },
  chunked: { title: 'HTTP/1.1 keep-alive, small chunked responses', path: '/chunked', method: 'GET', bodyBytes: 0, close: false },
  large: { title: 'HTTP/1.1 keep-alive, 64 KiB responses', path: '/64k', method: 'GET', bodyBytes: 0, close: false },
  upload: { title: 'HTTP/1.1 keep-alive, 1 MiB uploads', path: '/upload', method: 'POST', bodyBytes: 1024 * 1024, close: false },
  newconn: { title: 'A new connection per request (Connection: close)', path: '/', method: 'GET', bodyBytes: 0, close: true },
};
