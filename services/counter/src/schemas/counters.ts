import { COUNTER_NAME_PATTERN } from '@hyperscale/platform';

/** Maximum names per `POST /v1/counters:batchGet`. */
export const MAX_BATCH = 100;
/** Largest delta of one increment/decrement. */
export const MAX_DELTA = 1_000_000_000;
/** Scope a token needs to change counters. */
export const WRITE_SCOPE = 'counters:write';

/** A counter name: 1–200 characters of `[A-Za-z0-9_.:-]` (DESIGN §4). */
export const nameSchema = {
  type: 'string',
  pattern: COUNTER_NAME_PATTERN,
  minLength: 1,
  maxLength: 200,
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
    field: { type: 'string', description: 'The request field at fault, e.g. body.delta' },
  },
} as const;

const errorResponses = {
  400: { ...problemSchema, description: 'Invalid input; `field` names it' },
  401: { ...problemSchema, description: 'Missing, invalid or expired bearer token' },
  403: { ...problemSchema, description: 'The token lacks the counters:write scope' },
  429: { ...problemSchema, description: 'Rate limited; see Retry-After' },
  503: {
    ...problemSchema,
    description: 'Neither the fast path nor the fallback could serve; see Retry-After',
  },
} as const;

const bearer = [{ bearer: [] }];

const nameParams = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: nameSchema },
} as const;

const counterValue = {
  type: 'object',
  required: ['name', 'value'],
  additionalProperties: false,
  properties: {
    name: nameSchema,
    value: { type: 'integer', description: 'Current value (may be negative)' },
  },
} as const;

const deltaBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    delta: {
      type: 'integer',
      minimum: 1,
      maximum: MAX_DELTA,
      default: 1,
      description: 'Amount, 1..1e9 (default 1)',
    },
  },
} as const;

export const incrementSchema = {
  tags: ['counters'],
  summary: 'Add delta to a counter (needs scope counters:write)',
  description:
    'Answered after the delta is durable (Kafka acknowledged, or committed in MySQL on a fallback) with the value after it.',
  security: bearer,
  params: nameParams,
  body: deltaBody,
  response: { 200: counterValue, ...errorResponses },
} as const;

export const decrementSchema = {
  ...incrementSchema,
  summary: 'Subtract delta from a counter (needs scope counters:write)',
} as const;

export const getCounterSchema = {
  tags: ['counters'],
  summary: 'Current value of a counter (0 when never written)',
  security: bearer,
  params: nameParams,
  response: { 200: counterValue, ...errorResponses },
} as const;

export const batchGetSchema = {
  tags: ['counters'],
  summary: 'Values of up to 100 counters',
  security: bearer,
  body: {
    type: 'object',
    required: ['names'],
    additionalProperties: false,
    properties: {
      names: { type: 'array', minItems: 1, maxItems: MAX_BATCH, uniqueItems: true, items: nameSchema },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['results'],
      additionalProperties: false,
      properties: { results: { type: 'array', items: counterValue } },
    },
    ...errorResponses,
  },
} as const;

export interface NameParams {
  name: string;
}
export interface DeltaBody {
  delta?: number;
}
export interface BatchGetBody {
  names: string[];
}
