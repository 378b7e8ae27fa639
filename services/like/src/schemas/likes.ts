import { errorResponses, idSchema, postParams, bearer } from './common.js';

/** Maximum posts per `POST /v1/likes:batchGet`. */
export const MAX_BATCH = 100;

const postState = {
  type: 'object',
  required: ['postId', 'count', 'liked'],
  additionalProperties: false,
  properties: {
    postId: idSchema,
    count: { type: 'integer', minimum: 0, description: 'Number of users who like the post' },
    liked: { type: 'boolean', description: 'Whether the caller likes the post' },
  },
} as const;

const writeResult = {
  type: 'object',
  required: ['postId', 'liked', 'changed', 'count'],
  additionalProperties: false,
  properties: {
    postId: idSchema,
    liked: { type: 'boolean', description: 'The caller’s state after the request' },
    changed: { type: 'boolean', description: 'False when the state already was the requested one' },
    count: { type: 'integer', minimum: 0 },
  },
} as const;

export const likeSchema = {
  tags: ['likes'],
  summary: 'Like a post as the caller (idempotent)',
  description: 'Answered after the change is durable (Kafka acknowledged, or the MySQL fallback committed).',
  security: bearer,
  params: postParams,
  response: { 200: writeResult, ...errorResponses },
} as const;

export const unlikeSchema = { ...likeSchema, summary: 'Remove the caller’s like (idempotent)' } as const;

export const getLikesSchema = {
  tags: ['likes'],
  summary: 'Like count of a post and whether the caller likes it',
  security: bearer,
  params: postParams,
  response: { 200: postState, ...errorResponses },
} as const;

export const batchGetSchema = {
  tags: ['likes'],
  summary: 'Counts and the caller’s likes for up to 100 posts (a feed page)',
  security: bearer,
  body: {
    type: 'object',
    required: ['postIds'],
    additionalProperties: false,
    properties: {
      postIds: { type: 'array', minItems: 1, maxItems: MAX_BATCH, uniqueItems: true, items: idSchema },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['results'],
      additionalProperties: false,
      properties: { results: { type: 'array', items: postState } },
    },
    ...errorResponses,
  },
} as const;

export interface PostParams {
  postId: string;
}

export interface BatchGetBody {
  postIds: string[];
}
