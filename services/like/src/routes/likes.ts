import type { FastifyInstance, FastifyRequest } from 'fastify';
import { unauthorized } from '@hyperscale/platform';
import type { LikeStore, WriteOutcome } from '../like-store.js';
import {
  batchGetSchema,
  getLikesSchema,
  likeSchema,
  unlikeSchema,
  type BatchGetBody,
  type PostParams,
} from '../schemas/likes.js';

/** The authenticated caller's user id (installAuth ran before every route of this plugin). */
export function callerOf(request: FastifyRequest): string {
  const userId = request.principal?.userId;
  if (userId === undefined) throw unauthorized();
  return userId;
}

function writeBody(outcome: WriteOutcome) {
  return { postId: outcome.postId, liked: outcome.liked, changed: outcome.changed, count: outcome.count };
}

/** `/v1` like routes; the caller is always the token subject. */
export async function likeRoutes(app: FastifyInstance, options: { store: LikeStore }): Promise<void> {
  const { store } = options;

  app.put<{ Params: PostParams }>('/v1/posts/:postId/like', { schema: likeSchema }, async (request) =>
    writeBody(await store.setLiked(callerOf(request), request.params.postId, true)),
  );

  app.delete<{ Params: PostParams }>('/v1/posts/:postId/like', { schema: unlikeSchema }, async (request) =>
    writeBody(await store.setLiked(callerOf(request), request.params.postId, false)),
  );

  app.get<{ Params: PostParams }>('/v1/posts/:postId/likes', { schema: getLikesSchema }, async (request) =>
    store.readState(callerOf(request), request.params.postId),
  );

  app.post<{ Body: BatchGetBody }>('/v1/likes::batchGet', { schema: batchGetSchema }, async (request) => ({
    results: await store.readStates(callerOf(request), request.body.postIds),
  }));
}
