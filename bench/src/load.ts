import autocannon from 'autocannon';

/** One request of a scenario; `key` identifies it when its answer is recorded. */
export interface PlannedRequest {
  method: 'GET' | 'PUT' | 'DELETE' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  key?: string;
}

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx answers, connection errors and timeouts. */
  errors: number;
  ok: number;
  /** Keys of requests answered 2xx. */
  acknowledged: string[];
  statusCounts: Record<string, number>;
}

interface ConnectionContext {
  key?: string | undefined;
}

/**
 * Runs autocannon against `baseUrl` for `durationSeconds` with `connections` keep-alive
 * connections, one request in flight per connection, taking each request from `next()`.
 */
export async function runLoad(options: {
  baseUrl: string;
  connections: number;
  durationSeconds: number;
  next: () => PlannedRequest;
}): Promise<LoadResult> {
  const acknowledged: string[] = [];
  const statusCounts: Record<string, number> = {};
  const result = await autocannon({
    url: options.baseUrl,
    connections: options.connections,
    pipelining: 1,
    duration: options.durationSeconds,
    timeout: 10,
    requests: [
      {
        setupRequest: (request, context) => {
          const planned = options.next();
          (context as ConnectionContext).key = planned.key;
          return {
            ...request,
            method: planned.method,
            path: planned.path,
            headers: {
              ...planned.headers,
              ...(planned.body === undefined ? {} : { 'content-type': 'application/json' }),
            },
            ...(planned.body === undefined ? {} : { body: planned.body }),
          };
        },
        onResponse: (status, _body, context) => {
          statusCounts[status] = (statusCounts[status] ?? 0) + 1;
          const key = (context as ConnectionContext).key;
          if (status >= 200 && status < 300 && key !== undefined) acknowledged.push(key);
        },
      },
    ],
  });
  return {
    rps: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.non2xx + result.errors,
    ok: result['2xx'],
    acknowledged,
    statusCounts,
  };
}
