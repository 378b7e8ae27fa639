import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../hack/testing/ports.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/graceful-server.mjs', import.meta.url));

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  httpPort: number;
  metricsPort: number;
}

const children: ChildProcess[] = [];

async function start(env: Record<string, string>): Promise<Started> {
  const httpPort = await freePort();
  const metricsPort = await freePort();
  let output = '';
  const child = spawn(process.execPath, [fixture], {
    env: {
      PATH: process.env['PATH'] ?? '',
      SERVICE_NAME: 'graceful-fixture',
      HTTP_PORT: String(httpPort),
      METRICS_PORT: String(metricsPort),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited, httpPort, metricsPort };
}

async function waitReady(started: Started): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${started.metricsPort}/readyz`);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`fixture did not become ready:\n${started.output()}`);
}

describe('process lifecycle (real child processes, real signals)', () => {
  beforeAll(() => {
    // The fixture imports the compiled package, as a deployed service would.
    execFileSync(
      process.execPath,
      [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-b', packageDir],
      {
        stdio: 'inherit',
        timeout: 120_000,
      },
    );
  });

  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  });

  it('refuses to start with a missing variable and names it', async () => {
    const started = await start({ HTTP_PORT: '' });
    expect(await started.exited).toBe(1);
    expect(started.output()).toContain('HTTP_PORT: is required');
  });

  it('refuses to start with a malformed variable and names it', async () => {
    const started = await start({ SHUTDOWN_TIMEOUT_MS: 'soon' });
    expect(await started.exited).toBe(1);
    expect(started.output()).toMatch(/SHUTDOWN_TIMEOUT_MS/);
  });

  it('on SIGTERM fails readiness, drains in-flight requests, then exits 0', async () => {
    const started = await start({ SHUTDOWN_DELAY_MS: '300', SHUTDOWN_TIMEOUT_MS: '10000' });
    await waitReady(started);
    const base = `http://127.0.0.1:${started.httpPort}`;
    const inFlight = fetch(`${base}/slow?ms=1500`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const signalledAt = Date.now();
    started.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const readiness = await fetch(`http://127.0.0.1:${started.metricsPort}/readyz`);
    expect(readiness.status).toBe(503);

    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ done: true, ms: 1500 });
    expect(await started.exited).toBe(0);
    // It waited for the request (≈1.4 s left when signalled) and no longer than needed.
    const elapsed = Date.now() - signalledAt;
    expect(elapsed).toBeGreaterThanOrEqual(1_300);
    expect(elapsed).toBeLessThan(5_000);
    await expect(fetch(`${base}/slow`)).rejects.toThrow();
  });

  it('exits 1 within the shutdown timeout when a request never finishes', async () => {
    const started = await start({ SHUTDOWN_DELAY_MS: '0', SHUTDOWN_TIMEOUT_MS: '800' });
    await waitReady(started);
    const stuck = fetch(`http://127.0.0.1:${started.httpPort}/slow?ms=60000`).catch(
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const signalledAt = Date.now();
    started.child.kill('SIGTERM');
    expect(await started.exited).toBe(1);
    expect(Date.now() - signalledAt).toBeLessThan(3_000);
    expect(started.output()).toContain('shutdown step failed');
    await stuck;
  });
});
