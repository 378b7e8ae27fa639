import { nameSchema, problemSchema } from './counters.js';

const errorResponses = {
  400: { ...problemSchema, description: 'Invalid room name; `field` names it' },
  401: { ...problemSchema, description: 'Missing, invalid or expired bearer token' },
  429: { ...problemSchema, description: 'Rate limited; see Retry-After' },
  503: { ...problemSchema, description: 'Neither Redis nor the MySQL fallback could serve; see Retry-After' },
} as const;

const roomParams = {
  type: 'object',
  required: ['room'],
  additionalProperties: false,
  properties: { room: { ...nameSchema, description: 'Room name (`_site` is the site-wide room)' } },
} as const;

const online = {
  type: 'object',
  required: ['room', 'online'],
  additionalProperties: false,
  properties: {
    room: nameSchema,
    online: { type: 'integer', minimum: 0, description: 'Users whose last heartbeat is within the window' },
  },
} as const;

const bearer = [{ bearer: [] }];

export const heartbeatSchema = {
  tags: ['presence'],
  summary: 'Marks the caller online in a room (and in the site room `_site`)',
  description:
    'Send every < window (default 60 s); a user who stops heartbeating drops out after the window.',
  security: bearer,
  params: roomParams,
  response: { 200: online, ...errorResponses },
} as const;

export const leaveSchema = {
  tags: ['presence'],
  summary: 'Removes the caller from a room now',
  security: bearer,
  params: roomParams,
  response: { 200: online, ...errorResponses },
} as const;

export const onlineSchema = {
  tags: ['presence'],
  summary: 'Number of users online in a room',
  security: bearer,
  params: roomParams,
  response: { 200: online, ...errorResponses },
} as const;

export interface RoomParams {
  room: string;
}
