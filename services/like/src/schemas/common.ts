import { ID_PATTERN } from '@hyperscale/platform';

/** A post or user id: 1–64 characters of `[A-Za-z0-9_.:-]` (DESIGN §4). */
export const idSchema = { type: 'string', pattern: ID_PATTERN, minLength: 1, maxLength: 64 } as const;

/** `:postId` path parameter. */
export const postParams = {
  type: 'object',
  required: ['postId'],
  additionalProperties: false,
  properties: { postId: idSchema },
} as const;

/** RFC 9457 problem details as every error of the service is rendered. */
export const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem details (content type application/problem+json)',
  required: ['type', 'title', 'status'],
  additionalProperties: true,
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    field: { type: 'string', description: 'The request field at fault, e.g. body.postIds' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { field: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
} as const;

/** Error responses every authenticated route can give. */
export const errorResponses = {
  400: { ...problemSchema, description: 'Invalid input; `field` names it' },
  401: { ...problemSchema, description: 'Missing, invalid or expired bearer token' },
  403: { ...problemSchema, description: 'The token may not act for this user' },
  429: { ...problemSchema, description: 'Rate limited; see Retry-After' },
  503: {
    ...problemSchema,
    description: 'Neither the fast path nor the fallback could serve; see Retry-After',
  },
} as const;

/** OpenAPI security requirement of bearer-authenticated routes. */
export const bearer = [{ bearer: [] }];
