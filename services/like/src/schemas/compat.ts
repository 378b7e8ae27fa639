import { errorResponses, idSchema, bearer } from './common.js';

const likeBody = {
  type: 'object',
  required: ['userId', 'postId'],
  additionalProperties: false,
  properties: { userId: idSchema, postId: idSchema },
} as const;

const writeResult = {
  type: 'object',
  required: ['message', 'liked', 'changed', 'count'],
  additionalProperties: false,
  properties: {
    message: { type: 'string', description: 'The seed API’s message (按讚成功 / 取消按讚成功)' },
    liked: { type: 'boolean' },
    changed: { type: 'boolean' },
    count: { type: 'integer', minimum: 0 },
  },
} as const;

export const compatLikeSchema = {
  tags: ['compat'],
  summary: 'Seed API: like (userId must be the token subject unless LIKE_DEV_MODE)',
  security: bearer,
  body: likeBody,
  response: { 200: writeResult, ...errorResponses },
} as const;

export const compatUnlikeSchema = {
  ...compatLikeSchema,
  summary: 'Seed API: unlike (userId must be the token subject unless LIKE_DEV_MODE)',
} as const;

export const compatCountSchema = {
  tags: ['compat'],
  summary: 'Seed API: like count of a post',
  security: bearer,
  params: {
    type: 'object',
    required: ['postId'],
    additionalProperties: false,
    properties: { postId: idSchema },
  },
  response: {
    200: {
      type: 'object',
      required: ['count'],
      additionalProperties: false,
      properties: { count: { type: 'integer' } },
    },
    ...errorResponses,
  },
} as const;

export const compatHasLikedSchema = {
  tags: ['compat'],
  summary: 'Seed API: whether a user likes a post (userId must be the token subject unless LIKE_DEV_MODE)',
  security: bearer,
  params: {
    type: 'object',
    required: ['userId', 'postId'],
    additionalProperties: false,
    properties: { userId: idSchema, postId: idSchema },
  },
  response: {
    200: {
      type: 'object',
      required: ['liked'],
      additionalProperties: false,
      properties: { liked: { type: 'boolean' } },
    },
    ...errorResponses,
  },
} as const;

export interface CompatBody {
  userId: string;
  postId: string;
}

export interface HasLikedParams {
  userId: string;
  postId: string;
}
