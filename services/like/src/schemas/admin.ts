import { idSchema, problemSchema } from './common.js';

/** Maximum posts per explicit rewarm. */
export const MAX_REWARM = 1_000;

export const rewarmSchema = {
  tags: ['admin'],
  summary: 'Make posts cold and warm them again from MySQL (all cached posts when postIds is absent)',
  description: 'Needs the header x-admin-token = ADMIN_TOKEN.',
  security: [{ adminToken: [] }],
  body: {
    type: 'object',
    additionalProperties: false,
    properties: {
      postIds: { type: 'array', minItems: 1, maxItems: MAX_REWARM, uniqueItems: true, items: idSchema },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['scope', 'invalidated', 'warmed'],
      additionalProperties: false,
      properties: {
        scope: { type: 'string', enum: ['posts', 'all'] },
        invalidated: {
          type: 'integer',
          description: 'Posts made cold (scope posts) or keys deleted (scope all)',
        },
        warmed: { type: 'integer' },
      },
    },
    400: problemSchema,
    401: problemSchema,
    403: problemSchema,
    503: problemSchema,
  },
} as const;

export interface RewarmBody {
  postIds?: string[];
}
