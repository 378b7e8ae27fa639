/**
 * The project's processes started from their built entry points for a test: each with its
 * local.env, the test's overrides and free ports, resolved once its /metrics answers; and the
 * Kafka topics of one test run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createKafka, createLogger, ensureTopics } from '@hyperscale/platform';
import { readEnvFile } from '../../bench/src/processes.js';
import { freePort } from '../../hack/testing/ports.js';
import { stack } from '../../hack/testing/stack-control.js';

const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

export interface StartedService {
  name: string;
  child: ChildProcess;
  httpPort: number;
  metricsPort: number;
  /** stdout and stderr so far. */
  output: () => string;
}

export interface StartOptions {
  /** Node flags before the entry point, e.g. `['--import', '@hyperscale/platform/telemetry']`. */
  nodeArgs?: readonly string[];
  /**
   * Run this instead of `dir`/dist/main.js of the repository: Node's arguments and their working
   * directory (an image's command in its tree, say). `dir`/local.env is still read.
   */
  command?: { args: readonly string[]; cwd: string };
}

/**
 * Starts `dir`/dist/main.js (e.g. `services/counter`), or `options.command`; rejects with its
 * output if it exits or stays unready for 60 s.
 */
export async function startService(
  name: string,
  dir: string,
  env: Record<string, string>,
  options: StartOptions = {},
): Promise<StartedService> {
  const httpPort = await freePort();
  const metricsPort = await freePort();
  const args = options.command?.args ?? [...(options.nodeArgs ?? []), join(repoRoot, dir, 'dist/main.js')];
  const child = spawn(process.execPath, args, {
    cwd: options.command?.cwd ?? join(repoRoot, dir),
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '/tmp',
      ...readEnvFile(join(repoRoot, dir, 'local.env')),
      ...env,
      HTTP_PORT: String(httpPort),
      METRICS_PORT: String(metricsPort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  const output = () => chunks.join('');
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`${name} exited with ${child.exitCode}:\n${output().slice(-3_000)}`);
    // The body is read: an unread one would keep the response (and the connection) open.
    const up = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(1_000) })
      .then(async (response) => (await response.arrayBuffer(), response.ok))
      .catch(() => false);
    if (up) return { name, child, httpPort, metricsPort, output };
    await new Promise((done) => setTimeout(done, 200));
  }
  await stopProcess(child);
  throw new Error(`${name} did not serve /metrics within 60 s:\n${output().slice(-3_000)}`);
}

/** SIGTERM, then SIGKILL after 15 s; resolves once the process is gone. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** The three event topics of one test run, so its writer consumes nothing of another run. */
export class RunTopics {
  readonly likes: string;
  readonly counters: string;
  readonly uniques: string;
  private readonly kafka: ReturnType<typeof createKafka>;
  private created = false;

  constructor(runId: string) {
    this.likes = `${runId}.likes`;
    this.counters = `${runId}.counters`;
    this.uniques = `${runId}.uniques`;
    this.kafka = createKafka({
      clientId: runId,
      brokers: [...stack.kafka.brokers],
      logger: createLogger({ service: `${runId}-topics`, level: 'silent' }),
    });
  }

  private names(): string[] {
    return [this.likes, this.counters, this.uniques];
  }

  async create(): Promise<void> {
    await ensureTopics(
      this.kafka,
      this.names().map((topic) => ({ topic, numPartitions: 1 })),
      30_000,
    );
    this.created = true;
  }

  async remove(): Promise<void> {
    if (!this.created) return;
    const admin = this.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: this.names(), timeout: 10_000 }).finally(() => admin.disconnect());
  }
}
