import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { installAuth, signDevToken, TokenVerifier } from './auth.js';
import { installProblemHandlers } from './error-handler.js';

const secret = 'a-development-secret-of-at-least-32-bytes';

describe('bearer auth', () => {
  let app: FastifyInstance;
  let jwksServer: Server;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwksServer = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;

    app = Fastify();
    installProblemHandlers(app);
    installAuth(app, new TokenVerifier({ hs256Secret: secret, jwksUrl, clockToleranceSeconds: 0 }));
    app.get('/me', async (request) => ({ userId: request.principal?.userId }));
    app.get('/public', { config: { auth: false } }, async () => ({ ok: true }));
    app.post('/counters', { config: { auth: { scopes: ['counters:write'] } } }, async () => ({ ok: true }));
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
  });

  const get = (url: string, token?: string) =>
    app.inject({ url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

  it('accepts a valid HS256 token and exposes its subject', async () => {
    const token = await signDevToken({ secret, userId: 'alice' });
    const response = await get('/me', token);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ userId: 'alice' });
  });

  it('accepts an RS256 token signed by a key from the JWKS URL', async () => {
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('bob')
      .setExpirationTime('5m')
      .sign(privateKey);
    expect((await get('/me', token)).json()).toEqual({ userId: 'bob' });
  });

  it('rejects a missing token with 401 problem+json', async () => {
    const response = await get('/me');
    expect(response.statusCode).toBe(401);
    expect(response.headers['content-type']).toMatch(/problem\+json/);
  });

  it('rejects an expired token and says so', async () => {
    const token = await signDevToken({ secret, userId: 'alice', ttlSeconds: -10 });
    const response = await get('/me', token);
    expect(response.statusCode).toBe(401);
    expect(response.json().detail).toBe('Token has expired');
  });

  it('rejects a token signed with another secret', async () => {
    const token = await signDevToken({
      secret: 'another-secret-that-is-also-32-bytes-long',
      userId: 'alice',
    });
    expect((await get('/me', token)).json().detail).toBe('Token signature is invalid');
  });

  it('rejects garbage and a subject that is not a user id', async () => {
    expect((await get('/me', 'abc.def.ghi')).statusCode).toBe(401);
    const token = await signDevToken({ secret, userId: 'not a valid id!' });
    expect((await get('/me', token)).statusCode).toBe(401);
  });

  it('leaves public routes open', async () => {
    expect((await get('/public')).statusCode).toBe(200);
  });

  it('demands scopes: 403 without, 200 with, also when the token comes from the cache', async () => {
    const plain = await signDevToken({ secret, userId: 'svc' });
    const scoped = await signDevToken({ secret, userId: 'svc', scopes: ['counters:write'] });
    const post = (token: string) =>
      app.inject({ method: 'POST', url: '/counters', headers: { authorization: `Bearer ${token}` } });
    // The first request of a token verifies its signature; the second is answered from the cache.
    for (let round = 0; round < 2; round += 1) {
      const refused = await post(plain);
      expect(refused.statusCode).toBe(403);
      expect(refused.json().detail).toBe('This call needs the scope counters:write');
      expect((await post(scoped)).statusCode).toBe(200);
    }
  });

  it('does not serve a cached token past its expiry', async () => {
    const verifier = new TokenVerifier({ hs256Secret: secret, clockToleranceSeconds: 0 });
    const token = await signDevToken({ secret, userId: 'carol', ttlSeconds: 5 });
    expect((await verifier.verify(token)).userId).toBe('carol');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 10_000);
      await expect(verifier.verify(token)).rejects.toThrow('Token has expired');
    } finally {
      vi.useRealTimers();
    }
  });

  it('checks HS256 claims: not-yet-valid, issuer, audience, clock tolerance and the algorithm', async () => {
    const key = new TextEncoder().encode(secret);
    const verifier = new TokenVerifier({
      hs256Secret: secret,
      issuer: 'hyperscale',
      audience: 'counters',
      clockToleranceSeconds: 5,
    });
    const sign = (claims: { iss?: string; aud?: string; nbfInSeconds?: number }, alg = 'HS256') => {
      const jwt = new SignJWT({}).setProtectedHeader({ alg }).setSubject('dave').setExpirationTime('5m');
      if (claims.iss !== undefined) jwt.setIssuer(claims.iss);
      if (claims.aud !== undefined) jwt.setAudience(claims.aud);
      if (claims.nbfInSeconds !== undefined)
        jwt.setNotBefore(Math.floor(Date.now() / 1000) + claims.nbfInSeconds);
      return jwt.sign(key);
    };
    const detail = (token: string) =>
      verifier.verify(token).then(
        () => 'accepted',
        (err: Error & { detail?: string }) => err.detail ?? err.message,
      );
    expect(await detail(await sign({ iss: 'hyperscale', aud: 'counters' }))).toBe('accepted');
    expect(await detail(await sign({ iss: 'someone-else', aud: 'counters' }))).toBe(
      'Token claim invalid: iss',
    );
    expect(await detail(await sign({ iss: 'hyperscale', aud: 'likes' }))).toBe('Token claim invalid: aud');
    expect(await detail(await sign({ iss: 'hyperscale', aud: 'counters', nbfInSeconds: 60 }))).toBe(
      'Token claim invalid: nbf',
    );
    // Within the 5 s tolerance a token that becomes valid in 3 s is accepted.
    expect(await detail(await sign({ iss: 'hyperscale', aud: 'counters', nbfInSeconds: 3 }))).toBe(
      'accepted',
    );
    // Same secret, another HMAC: the verifier accepts HS256 only.
    expect(await detail(await sign({ iss: 'hyperscale', aud: 'counters' }, 'HS512'))).toBe(
      'Token algorithm is not accepted',
    );
  });

  it('keeps at most cacheSize verified tokens, dropping the least recently used', async () => {
    const verifier = new TokenVerifier({ hs256Secret: secret, cacheSize: 2 });
    const [a, b, c] = await Promise.all(['a1', 'b1', 'c1'].map((userId) => signDevToken({ secret, userId })));
    await verifier.verify(a!);
    await verifier.verify(b!);
    expect(verifier.cached(a!)?.userId).toBe('a1'); // a is now the most recently used
    await verifier.verify(c!);
    expect(verifier.cached(b!)).toBeUndefined();
    expect(verifier.cached(a!)?.userId).toBe('a1');
    expect(verifier.cached(c!)?.userId).toBe('c1');
    const uncached = new TokenVerifier({ hs256Secret: secret, cacheSize: 0 });
    await uncached.verify(a!);
    expect(uncached.cached(a!)).toBeUndefined();
  });

  it('refuses a short HS256 secret at construction', () => {
    expect(() => new TokenVerifier({ hs256Secret: 'short' })).toThrow(/32 bytes/);
  });
});
