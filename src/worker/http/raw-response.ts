// A response written straight to the socket, for the moments no request is
// being answered: a malformed request (clientError) or an Upgrade request
// that is not tunnelled. The connection closes after it.
import type net from 'node:net';
import type { ErrorCode } from '../../common/errors.js';

export function endWithResponse(socket: net.Socket, status: number, reason: string, code: ErrorCode | undefined): void {
  const body = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n` +
      (code ? `x-mosn-error: ${code}\r\n` : '') +
      `\r\n${body}`,
  );
}
