import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpProblem, PROBLEM_CONTENT_TYPE, type ProblemDetails } from './problem.js';

/** Turns a domain error into a problem, or returns undefined to let the default mapping apply. */
export type ErrorMapper = (error: unknown) => HttpProblem | undefined;

interface ValidationIssue {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** `body` + `/postIds/3` + missing `userId` → `body.postIds.3.userId`. */
export function fieldOf(context: string | undefined, issue: ValidationIssue): string {
  const segments = (issue.instancePath ?? '')
    .split('/')
    .filter((segment) => segment.length > 0)
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
  const missing = issue.params?.['missingProperty'];
  if (typeof missing === 'string') segments.push(missing);
  const extra = issue.params?.['additionalProperty'];
  if (typeof extra === 'string') segments.push(extra);
  return [context ?? 'request', ...segments].join('.');
}

function validationProblem(error: FastifyError): HttpProblem {
  const issues = (error.validation ?? []) as ValidationIssue[];
  const errors = issues.map((issue) => ({
    field: fieldOf(error.validationContext, issue),
    message: issue.message ?? 'is invalid',
  }));
  const first = errors[0] ?? { field: error.validationContext ?? 'request', message: error.message };
  return new HttpProblem({
    status: 400,
    slug: 'validation',
    title: 'Invalid request',
    field: first.field,
    detail: `${first.field} ${first.message}`,
    extensions: { errors },
  });
}

function malformedBody(detail: string): HttpProblem {
  return new HttpProblem({
    status: 400,
    slug: 'malformed-body',
    title: 'Malformed request body',
    field: 'body',
    detail,
  });
}

function frameworkProblem(error: FastifyError): HttpProblem | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpProblem({
        status: 415,
        slug: 'unsupported-media-type',
        title: 'Unsupported Media Type',
        field: 'headers.content-type',
        detail: 'Send the body as application/json',
      });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return malformedBody(error.message);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpProblem({
        status: 413,
        slug: 'body-too-large',
        title: 'Content Too Large',
        field: 'body',
        detail: error.message,
      });
    default:
      break;
  }
  if (error instanceof SyntaxError && error.statusCode === 400) return malformedBody(error.message);
  const status = error.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    // Errors raised by plugins (rate limit, auth, ...) that carry a client status keep it.
    return new HttpProblem({
      status,
      slug: status === 429 ? 'rate-limited' : 'client-error',
      title: status === 429 ? 'Too Many Requests' : 'Request rejected',
      detail: error.message,
    });
  }
  return undefined;
}

/** Writes a problem as the reply, with `Retry-After` when the problem carries one. */
export function sendProblem(
  reply: FastifyReply,
  request: FastifyRequest,
  problem: HttpProblem,
): FastifyReply {
  if (problem.retryAfterSeconds !== undefined) {
    reply.header('retry-after', String(Math.max(0, Math.ceil(problem.retryAfterSeconds))));
  }
  const body: ProblemDetails = problem.toJSON(request.url);
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

/**
 * Installs the one error handler and the 404 handler of a service: every error leaves as RFC 9457
 * problem+json. Validation errors name the field (`body.postIds`, `params.postId`); unknown errors
 * become a 500 that reveals nothing internal (the cause is logged with the request id).
 */
export function installProblemHandlers(app: FastifyInstance, options: { mapError?: ErrorMapper } = {}): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    let problem: HttpProblem | undefined;
    if (error instanceof HttpProblem) problem = error;
    else if (error.validation) problem = validationProblem(error);
    else problem = options.mapError?.(error) ?? frameworkProblem(error);

    if (problem === undefined) {
      request.log.error({ err: error }, 'unhandled error');
      problem = new HttpProblem({
        status: 500,
        slug: 'internal',
        title: 'Internal Server Error',
        detail: `The request failed; quote request id ${request.id} when reporting it`,
      });
    } else if (problem.status >= 500) {
      request.log.warn({ err: error, status: problem.status }, problem.title);
    }
    return sendProblem(reply, request, problem);
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      request,
      new HttpProblem({
        status: 404,
        slug: 'not-found',
        title: 'Not Found',
        detail: `No route ${request.method} ${request.url.split('?')[0] ?? ''}`,
      }),
    ),
  );
}
