import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presenceKey } from '../src/presence-store.js';
import { createTestContext, ownerOf, sleep, type TestContext } from './helpers.js';

let ctx: TestContext;
const WINDOW = 1_500;

beforeAll(async () => {
  ctx = await createTestContext('presence', { presenceWindowMs: WINDOW });
});
afterAll(async () => {
  await ctx?.close();
});

async function call(method: 'POST' | 'GET' | 'DELETE', url: string, user?: string) {
  const headers = user === undefined ? {} : await ctx.auth(user, []);
  return ctx.app.inject({ method, url, headers });
}

describe('presence', () => {
  it('counts users seen within the window; a silent user drops out after it; leave is immediate', async () => {
    const room = ctx.name('room');
    const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((u) => ctx.name(u)) as [string, string, string];
    expect((await call('POST', `/v1/presence/${room}/heartbeat`, alice)).json()).toEqual({ room, online: 1 });
    expect((await call('POST', `/v1/presence/${room}/heartbeat`, bob)).json()).toEqual({ room, online: 2 });
    // Repeated heartbeats of one user count once.
    expect((await call('POST', `/v1/presence/${room}/heartbeat`, bob)).json()).toEqual({ room, online: 2 });
    await call('POST', `/v1/presence/${room}/heartbeat`, carol);
    expect((await call('GET', `/v1/presence/${room}`, alice)).json()).toEqual({ room, online: 3 });

    // Carol leaves explicitly; Bob just vanishes; Alice keeps heartbeating.
    expect((await call('DELETE', `/v1/presence/${room}`, carol)).json()).toEqual({ room, online: 2 });
    for (let i = 0; i < 4; i += 1) {
      await sleep(WINDOW / 3);
      await call('POST', `/v1/presence/${room}/heartbeat`, alice);
    }
    expect((await call('GET', `/v1/presence/${room}`, alice)).json()).toEqual({ room, online: 1 });
    // The set itself is trimmed, not only counted: Bob's entry is gone.
    const members = await ctx.shard(ownerOf(ctx, room)).redis.zrange(presenceKey(room), 0, -1);
    expect(members).toEqual([alice]);
    await sleep(WINDOW + 200);
    expect((await call('GET', `/v1/presence/${room}`, alice)).json()).toEqual({ room, online: 0 });
  });

  it('heartbeats count in the site-wide room `_site` too', async () => {
    const room = ctx.name('site-check');
    const user = ctx.name('site-user');
    await call('POST', `/v1/presence/${room}/heartbeat`, user);
    const site = await ctx.shard(ownerOf(ctx, '_site')).redis.zscore(presenceKey('_site'), user);
    expect(site).not.toBeNull();
    const res = await call('GET', '/v1/presence/_site', user);
    expect(res.json<{ online: number }>().online).toBeGreaterThanOrEqual(1);
  });

  it('needs a token, and rejects bad room names', async () => {
    expect((await call('POST', `/v1/presence/${ctx.name('r')}/heartbeat`)).statusCode).toBe(401);
    const bad = await call('POST', `/v1/presence/a%20b/heartbeat`, 'u1');
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ field?: string }>().field).toContain('room');
    expect((await call('GET', `/v1/presence/${'r'.repeat(201)}`, 'u1')).statusCode).toBe(400);
  });
});
