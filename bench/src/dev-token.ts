import { createHmac } from 'node:crypto';

/**
 * Signs HS256 tokens synchronously (autocannon builds requests synchronously), cached per user.
 * Same claims as the platform's `signDevToken`: `sub`, `iat`, `exp` and `scope` when given.
 */
export function devTokenSigner(secret: string): (userId: string, scopes?: readonly string[]) => string {
  const cache = new Map<string, string>();
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  return (userId, scopes = []) => {
    const cacheKey = `${userId} ${scopes.join(' ')}`;
    let token = cache.get(cacheKey);
    if (token === undefined) {
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        sub: userId,
        iat: now,
        exp: now + 3_600,
        ...(scopes.length ? { scope: scopes.join(' ') } : {}),
      };
      const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
      const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      token = `${header}.${payload}.${signature}`;
      cache.set(cacheKey, token);
    }
    return token;
  };
}
