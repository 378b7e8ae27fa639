import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createBaseApp } from './base-app.js';
import { documentHeaders } from './security-headers.js';

// Headers helmet sets for HTML documents only; API responses must not spend bytes on them.
const DOCUMENT_ONLY = [
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
];

describe('security headers', () => {
  it('API responses (errors included) carry the REST set; pages get helmet’s document headers', async () => {
    const app = await createBaseApp({ logger: pino({ level: 'silent' }), registry: new Registry() });
    app.get('/v1/thing', async () => ({ ok: true }));
    app.get('/page', { onRequest: documentHeaders }, async (_request, reply) =>
      reply.type('text/html').send('<p>hi</p>'),
    );

    for (const url of ['/v1/thing', '/nope']) {
      const api = await app.inject(url);
      expect(api.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
      expect(api.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
      expect(api.headers['x-content-type-options']).toBe('nosniff');
      expect(api.headers['x-frame-options']).toBe('DENY');
      expect(api.headers['cache-control']).toBe('no-store');
      for (const name of DOCUMENT_ONLY) expect(api.headers[name], name).toBeUndefined();
    }

    const page = await app.inject('/page');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(page.headers['cache-control']).toBeUndefined();
    for (const name of DOCUMENT_ONLY) expect(page.headers[name], name).toBeDefined();
    await app.close();
  });
});
