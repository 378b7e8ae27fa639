import { ID_PATTERN } from '@hyperscale/platform';
import { nameSchema, problemSchema } from './counters.js';

const errorResponses = {
  400: { ...problemSchema, description: 'Invalid input; `field` names it' },
  401: { ...problemSchema, description: 'Missing, invalid or expired bearer token' },
  403: { ...problemSchema, description: 'userId is not the token subject' },
  429: { ...problemSchema, description: 'Rate limited; see Retry-After' },
  503: { ...problemSchema, description: 'Neither Redis + Kafka nor MySQL could serve; see Retry-After' },
} as const;

const bearer = [{ bearer: [] }];
const params = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: nameSchema },
} as const;
const day = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'UTC day YYYY-MM-DD' } as const;

export const uniqueEventSchema = {
  tags: ['uniques'],
  summary: 'Records that the caller was active (counted once per UTC day)',
  security: bearer,
  params,
  body: {
    type: 'object',
    required: ['userId'],
    additionalProperties: false,
    properties: {
      userId: { type: 'string', pattern: ID_PATTERN, description: 'Must be the token subject' },
      at: { type: 'string', format: 'date-time', description: 'When (default now); decides the UTC day' },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['name', 'day'],
      additionalProperties: false,
      properties: { name: nameSchema, day },
    },
    ...errorResponses,
  },
} as const;

export const uniqueCountSchema = {
  tags: ['uniques'],
  summary: 'Distinct users: exact for ?day=, HyperLogLog (±0.81 %) for ?from=&to= (≤ 92 days)',
  security: bearer,
  params,
  querystring: {
    type: 'object',
    additionalProperties: false,
    // Checked in the handler (calendar validity too), so errors name `query.day|from|to`.
    properties: {
      day: { type: 'string', maxLength: 10, description: 'UTC day YYYY-MM-DD (exact count)' },
      from: { type: 'string', maxLength: 10, description: 'First day of a range (HyperLogLog)' },
      to: { type: 'string', maxLength: 10, description: 'Last day of a range, at most 92 days after from' },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['name', 'count', 'exact'],
      additionalProperties: false,
      properties: {
        name: nameSchema,
        day,
        from: day,
        to: day,
        count: { type: 'integer', minimum: 0 },
        exact: { type: 'boolean' },
      },
    },
    ...errorResponses,
  },
} as const;

export interface UniqueParams {
  name: string;
}
export interface UniqueEventBody {
  userId: string;
  at?: string;
}
export interface UniqueQuery {
  day?: string;
  from?: string;
  to?: string;
}
