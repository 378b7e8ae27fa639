import type { Socket } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { fastifyLoggingOptions } from '../logger.js';
import { installProblemHandlers, type ErrorMapper } from './error-handler.js';
import { installHttpMetrics } from './http-metrics.js';
import { mapDependencyError } from './dependency-errors.js';
import { API_SECURITY_HEADERS } from './security-headers.js';

export interface BaseAppOptions {
  logger: Logger;
  registry: Registry;
  bodyLimitBytes?: number;
  /** Upper bound for receiving a whole request (slow clients cannot hold a socket forever). */
  requestTimeoutMs?: number;
  /**
   * How often Node looks for connections past `requestTimeoutMs` (answered 408 and closed). Node's
   * default, 30 s, let a connection that sends nothing live three times the request timeout.
   * Default 1000: a scan of the open connections each second.
   */
  connectionsCheckingIntervalMs?: number;
  /**
   * Longest path parameter the router accepts (Fastify's default 100 answers 414 beyond it, before
   * any schema runs). Raise it above the longest valid id so the schema rejects longer ones with a
   * 400 naming the field (the counter service: names up to 200). Default 100.
   */
  maxParamLength?: number;
  /** Log one line per request (off by default; metrics count every request). */
  logRequests?: boolean;
  /**
   * Maps the service's domain errors to problems; platform dependency failures (Redis, Kafka,
   * MySQL outages and timeouts) fall through to {@link mapDependencyError} and become 503s.
   */
  mapError?: ErrorMapper;
}

/**
 * The Fastify instance every HTTP service starts from: platform logger with request ids echoed in
 * `x-request-id`, security headers for an API (helmet, computed once; pages add theirs with
 * `documentHeaders`), RED metrics by route template, problem+json
 * errors and 404s, a body limit, request timeouts, and 503 for requests arriving while closing.
 * Returned not listening; routes are registered by the service.
 */
export async function createBaseApp(options: BaseAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...fastifyLoggingOptions(options.logger, options.logRequests ?? false),
    bodyLimit: options.bodyLimitBytes ?? 65_536,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
    http: { connectionsCheckingInterval: options.connectionsCheckingIntervalMs ?? 1_000 },
    routerOptions: { maxParamLength: options.maxParamLength ?? 100 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { allErrors: false, removeAdditional: false, coerceTypes: false } },
  });
  // Responses finishing after close() began carry `Connection: close`, so keep-alive sockets of
  // in-flight requests end with their response and close() does not wait for idle clients.
  let closing = false;
  // A connection that never sent a request (a load balancer's pre-opened one, a TCP health check)
  // is not idle to Node: close() waited for it until the shutdown timed out (exit 1, later steps
  // such as the producer's flush skipped). At close, every socket without a response in progress
  // is destroyed; the others end with their response. Tracked per connection, not per request.
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  app.addHook('preClose', (done) => {
    closing = true;
    for (const socket of sockets) if (!responding(socket)) socket.destroy();
    done();
  });
  const headers = API_SECURITY_HEADERS;
  // Per-request hooks take Fastify's callback form: nothing here awaits, and an async hook costs a
  // promise and a microtask turn on every request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(headers);
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  installHttpMetrics(app, options.registry);
  const serviceMapper = options.mapError;
  installProblemHandlers(app, {
    mapError: (error) => serviceMapper?.(error) ?? mapDependencyError(error),
  });
  return app;
}

/**
 * Whether Node is writing a response on `socket`: its `ServerResponse` sits in `_httpMessage` from
 * the moment a request's headers are parsed until the response is finished (node:_http_server).
 */
function responding(socket: Socket): boolean {
  return (socket as Socket & { _httpMessage?: unknown })._httpMessage != null;
}
