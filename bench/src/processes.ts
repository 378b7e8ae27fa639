import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Parses a `KEY=value` file (comments and blank lines ignored). */
export function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || !trimmed.includes('=')) continue;
    env[trimmed.slice(0, trimmed.indexOf('='))] = trimmed.slice(trimmed.indexOf('=') + 1);
  }
  return env;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export interface RunningProcess {
  name: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `node <script>` with `env`, logging to `.stack/bench/<name>.log`, and waits for `ready()`. */
export async function startProcess(options: {
  name: string;
  script: string;
  env: Record<string, string>;
  ready: () => Promise<boolean>;
  timeoutMs?: number;
}): Promise<RunningProcess> {
  const log = createWriteStream(`${repoRoot}.stack/bench-${options.name}.log`, { flags: 'a' });
  // BENCH_CPU_PROFILE=1: each process writes a V8 CPU profile to .stack/bench-profiles on exit.
  const profile =
    process.env['BENCH_CPU_PROFILE'] === '1'
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${repoRoot}.stack/bench-profiles`,
          `--cpu-prof-name=${options.name}.${Date.now()}.cpuprofile`,
        ]
      : [];
  const child = spawn(process.execPath, [...profile, options.script], {
    env: { PATH: process.env['PATH'] ?? '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`${options.name} exited (${child.exitCode}); see .stack/bench-${options.name}.log`);
    if (await options.ready().catch(() => false)) {
      return {
        name: options.name,
        child,
        stop: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
          }),
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill('SIGKILL');
  throw new Error(
    `${options.name} not ready within ${options.timeoutMs ?? 30_000} ms; see .stack/bench-${options.name}.log`,
  );
}

/**
 * CPU time (user + system) `pid` has used so far, in microseconds, from `/proc/<pid>/stat`. Linux
 * reports it in USER_HZ ticks, 100 per second on every architecture Node runs on (10 ms steps:
 * meaningful over a whole measured window, not for one request).
 */
export function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at ") "; utime and stime are
  // the 14th and 15th fields of the line, the 12th and 13th after the name.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

export async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
  return response.ok;
}
