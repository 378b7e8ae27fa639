import type { FastifyInstance, FastifyRequest } from 'fastify';
import { unauthorized } from '@hyperscale/platform';
import type { PresenceStore } from '../presence-store.js';
import { heartbeatSchema, leaveSchema, onlineSchema, type RoomParams } from '../schemas/presence.js';

function callerOf(request: FastifyRequest): string {
  const userId = request.principal?.userId;
  if (userId === undefined) throw unauthorized();
  return userId;
}

/** `/v1/presence` routes; the user is always the token subject (nobody heartbeats for others). */
export async function presenceRoutes(
  app: FastifyInstance,
  options: { presence: PresenceStore },
): Promise<void> {
  const { presence } = options;
  app.post<{ Params: RoomParams }>(
    '/v1/presence/:room/heartbeat',
    { schema: heartbeatSchema },
    async (request) => ({
      room: request.params.room,
      online: await presence.heartbeat(request.params.room, callerOf(request)),
    }),
  );
  app.delete<{ Params: RoomParams }>('/v1/presence/:room', { schema: leaveSchema }, async (request) => ({
    room: request.params.room,
    online: await presence.leave(request.params.room, callerOf(request)),
  }));
  app.get<{ Params: RoomParams }>('/v1/presence/:room', { schema: onlineSchema }, async (request) => ({
    room: request.params.room,
    online: await presence.online(request.params.room),
  }));
}
