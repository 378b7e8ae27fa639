import type { FastifyInstance, FastifyRequest } from 'fastify';
import { forbidden } from '@hyperscale/platform';
import type { LikeStore } from '../like-store.js';
import {
  compatCountSchema,
  compatHasLikedSchema,
  compatLikeSchema,
  compatUnlikeSchema,
  type CompatBody,
  type HasLikedParams,
} from '../schemas/compat.js';
import { callerOf } from './likes.js';

/** The seed API's success messages, kept byte for byte for its clients. */
export const COMPAT_MESSAGES = { like: '按讚成功', unlike: '取消按讚成功' } as const;

/**
 * The user a compat request acts for: the given `userId` when it is the token's subject, or in
 * dev mode any user (the token is still required). Otherwise 403 naming the field.
 */
function actingUser(request: FastifyRequest, userId: string, field: string, devMode: boolean): string {
  const caller = callerOf(request);
  if (userId !== caller && !devMode) {
    throw forbidden(`${field} must be the token subject (${caller})`, field);
  }
  return userId;
}

/** The seed tutorial's routes (`/api/...`), same paths and bodies, responses extended. */
export async function compatRoutes(
  app: FastifyInstance,
  options: { store: LikeStore; devMode: boolean },
): Promise<void> {
  const { store, devMode } = options;

  const write = (liked: boolean) => async (request: FastifyRequest<{ Body: CompatBody }>) => {
    const userId = actingUser(request, request.body.userId, 'body.userId', devMode);
    const outcome = await store.setLiked(userId, request.body.postId, liked);
    return {
      message: liked ? COMPAT_MESSAGES.like : COMPAT_MESSAGES.unlike,
      liked: outcome.liked,
      changed: outcome.changed,
      count: outcome.count,
    };
  };

  app.post<{ Body: CompatBody }>('/api/like', { schema: compatLikeSchema }, write(true));
  app.post<{ Body: CompatBody }>('/api/unlike', { schema: compatUnlikeSchema }, write(false));

  app.get<{ Params: { postId: string } }>(
    '/api/like-count/:postId',
    { schema: compatCountSchema },
    async (request) => {
      const state = await store.readState(undefined, request.params.postId);
      return { count: state.count };
    },
  );

  app.get<{ Params: HasLikedParams }>(
    '/api/has-liked/:userId/:postId',
    { schema: compatHasLikedSchema },
    async (request) => {
      const userId = actingUser(request, request.params.userId, 'params.userId', devMode);
      const state = await store.readState(userId, request.params.postId);
      return { liked: state.liked };
    },
  );
}
