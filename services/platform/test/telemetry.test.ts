import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const register = fileURLToPath(new URL('../dist/telemetry-register.js', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/traced-server.mjs', import.meta.url));

/** A real OTLP/HTTP receiver: records every export request's path and body. */
function startReceiver(): Promise<{
  server: Server;
  url: string;
  received: { path: string; body: Buffer }[];
}> {
  const received: { path: string; body: Buffer }[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ path: request.url ?? '', body: Buffer.concat(chunks) });
      response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received }),
    ),
  );
}

function runFixture(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(process.execPath, ['--import', register, fixture], {
      env: { PATH: process.env['PATH'] ?? '', SERVICE_NAME: 'traced-fixture', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('OpenTelemetry bootstrap (real OTLP/HTTP export from a child process)', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    execFileSync(
      process.execPath,
      [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-b', packageDir],
      {
        stdio: 'inherit',
        timeout: 120_000,
      },
    );
    receiver = await startReceiver();
  });
  afterAll(() => new Promise<void>((resolve) => receiver.server.close(() => resolve())));

  it('exports spans for an instrumented Fastify route, with the service name and route template', async () => {
    const { output } = await runFixture({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
    expect(output).toContain('status 200');
    const traces = receiver.received.filter((request) => request.path === '/v1/traces');
    expect(traces.length).toBeGreaterThan(0);
    const payload = Buffer.concat(traces.map((request) => request.body)).toString('latin1');
    expect(payload).toContain('traced-fixture');
    expect(payload).toContain('/v1/traced/:id');
  });

  it('exports nothing when no endpoint is configured', async () => {
    const before = receiver.received.length;
    const { output } = await runFixture({});
    expect(output).toContain('status 200');
    expect(receiver.received.length).toBe(before);
  });
});
