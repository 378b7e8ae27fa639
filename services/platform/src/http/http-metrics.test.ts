import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { installHttpMetrics } from './http-metrics.js';

describe('installHttpMetrics', () => {
  it('labels by route template, never by raw id', async () => {
    const registry = new Registry();
    const app = Fastify();
    installHttpMetrics(app, registry);
    app.get('/v1/posts/:postId/likes', async () => ({ count: 1 }));
    await app.inject('/v1/posts/p1/likes');
    await app.inject('/v1/posts/p2/likes');
    await app.inject('/missing/p3');
    const text = await registry.metrics();
    expect(text).toContain(
      'hyperscale_http_requests_total{method="GET",route="/v1/posts/:postId/likes",status_code="200"} 2',
    );
    expect(text).toContain(
      'hyperscale_http_requests_total{method="GET",route="unmatched",status_code="404"} 1',
    );
    expect(text).toContain(
      'hyperscale_http_request_duration_seconds_count{method="GET",route="/v1/posts/:postId/likes",status_code="200"} 2',
    );
    expect(text).not.toContain('p1');
    expect(text).toContain('hyperscale_http_requests_in_flight 0');
    await app.close();
  });
});
