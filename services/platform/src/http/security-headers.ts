import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * The security headers helmet sets (CSP, HSTS, nosniff, frame options, ...), computed ONCE.
 * @fastify/helmet rebuilds the helmet middleware for every request, which showed up as a few
 * percent of a like pod's CPU; API responses all get the same headers, so they are captured by
 * running helmet against a recording response at start-up and copied onto each reply.
 */
export function securityHeaders(options?: Readonly<HelmetOptions>): Readonly<Record<string, string>> {
  const headers = new Map<string, string>();
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers.set(name.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value));
    },
    removeHeader(name: string) {
      headers.delete(name.toLowerCase());
    },
  };
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, () => undefined);
  return Object.freeze(Object.fromEntries(headers));
}
