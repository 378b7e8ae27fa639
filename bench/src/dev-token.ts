import { createHmac } from 'node:crypto';

/**
 * Signs HS256 tokens synchronously (autocannon builds requests synchronously), cached per user.
 * Same claims as the platform's `signDevToken`: `sub`, `iat`, `exp`.
 */
export function devTokenSigner(secret: string): (userId: string) => string {
  const cache = new Map<string, string>();
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  return (userId) => {
    let token = cache.get(userId);
    if (token === undefined) {
      const now = Math.floor(Date.now() / 1000);
      const payload = Buffer.from(JSON.stringify({ sub: userId, iat: now, exp: now + 3_600 })).toString(
        'base64url',
      );
      const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      token = `${header}.${payload}.${signature}`;
      cache.set(userId, token);
    }
    return token;
  };
}
