/**
 * RFC 9457 problem details. Every error a Hyperscale HTTP service returns has this shape and the
 * `application/problem+json` content type.
 */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  /** The request field at fault, e.g. `body.postIds` or `params.postId` (validation errors). */
  field?: string;
  /** Every invalid field when more than one failed validation. */
  errors?: { field: string; message: string }[];
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const TYPE_BASE = 'https://hyperscale.dev/problems/';

/**
 * An error that maps one-to-one to a problem+json response. Throw it from handlers or domain code;
 * the platform error handler renders it. `retryAfterSeconds` becomes the `Retry-After` header.
 */
export class HttpProblem extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly field: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly extensions: Record<string, unknown>;

  constructor(init: {
    status: number;
    slug: string;
    title: string;
    detail?: string;
    field?: string;
    retryAfterSeconds?: number;
    extensions?: Record<string, unknown>;
    cause?: unknown;
  }) {
    super(init.detail ?? init.title, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'HttpProblem';
    this.status = init.status;
    this.type = TYPE_BASE + init.slug;
    this.title = init.title;
    this.detail = init.detail;
    this.field = init.field;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.extensions = init.extensions ?? {};
  }

  toJSON(instance?: string): ProblemDetails {
    const body: ProblemDetails = { type: this.type, title: this.title, status: this.status };
    if (this.detail !== undefined) body.detail = this.detail;
    if (instance !== undefined) body.instance = instance;
    if (this.field !== undefined) body.field = this.field;
    return { ...body, ...this.extensions };
  }
}

/** 400: a request field is missing or malformed; `field` names it (e.g. `body.userId`). */
export const badRequest = (field: string, detail: string) =>
  new HttpProblem({ status: 400, slug: 'validation', title: 'Invalid request', field, detail });

/** 401: no credentials, or credentials that are invalid or expired. */
export const unauthorized = (detail = 'A valid bearer token is required') =>
  new HttpProblem({ status: 401, slug: 'unauthorized', title: 'Unauthorized', detail });

/** 403: authenticated, but not allowed to do this (e.g. body userId differs from the token subject). */
export const forbidden = (detail: string, field?: string) =>
  new HttpProblem({
    status: 403,
    slug: 'forbidden',
    title: 'Forbidden',
    detail,
    ...(field === undefined ? {} : { field }),
  });

/** 404: no such resource or route. */
export const notFound = (detail = 'Not found') =>
  new HttpProblem({ status: 404, slug: 'not-found', title: 'Not Found', detail });

/** 409: the request conflicts with the current state. */
export const conflict = (detail: string) =>
  new HttpProblem({ status: 409, slug: 'conflict', title: 'Conflict', detail });

/** 429: rate limited; retry after the given number of seconds. */
export const tooManyRequests = (retryAfterSeconds: number, detail = 'Rate limit exceeded') =>
  new HttpProblem({
    status: 429,
    slug: 'rate-limited',
    title: 'Too Many Requests',
    detail,
    retryAfterSeconds,
  });

/** 503: a dependency is unavailable; the client may retry after the given number of seconds. */
export const serviceUnavailable = (detail: string, retryAfterSeconds = 1, cause?: unknown) =>
  new HttpProblem({
    status: 503,
    slug: 'unavailable',
    title: 'Service Unavailable',
    detail,
    retryAfterSeconds,
    cause,
  });
