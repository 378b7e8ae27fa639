import { readdirSync, readFileSync } from 'node:fs';
import { processCpuMicros } from './processes.js';

/**
 * CPU of every process on the machine over a load window, grouped by role (the service under load,
 * this load generator, the writer, Redis, Sentinel, Kafka, MariaDB, the rest). On two shared cores
 * a scenario is limited by the sum, not by the service alone: this shows what each part costs per
 * answered request and how much of the machine the window used.
 */
export type CpuGroup =
  'service' | 'loadgen' | 'writer' | 'redis' | 'sentinel' | 'kafka' | 'mariadb' | 'other';

const GROUP_ORDER: readonly CpuGroup[] = [
  'service',
  'loadgen',
  'writer',
  'redis',
  'sentinel',
  'kafka',
  'mariadb',
  'other',
];

interface ProcessCpu {
  /** utime + stime in µs. */
  cpuUs: number;
  group: CpuGroup;
}

export interface CpuSnapshot {
  atMs: number;
  processes: Map<number, ProcessCpu>;
}

export interface SystemCpu {
  /** µs of CPU per answered request, per group. */
  perRequestUs: Record<CpuGroup, number>;
  totalPerRequestUs: number;
  /** CPU seconds used per wall second (2 = both cores busy all the time). */
  coresBusy: number;
}

/** Role of a process from its command line (pids of the service and of this process first). */
export function groupOf(pid: number, commandLine: string, servicePid: number): CpuGroup {
  if (pid === servicePid) return 'service';
  if (pid === process.pid) return 'loadgen';
  if (commandLine.includes('services/writer/dist/main.js')) return 'writer';
  if (commandLine.startsWith('redis-sentinel') || commandLine.includes('[sentinel]')) return 'sentinel';
  if (commandLine.startsWith('redis-server')) return 'redis';
  if (commandLine.includes('kafka.Kafka')) return 'kafka';
  if (commandLine.startsWith('mariadbd') || commandLine.includes('/mariadbd')) return 'mariadb';
  return 'other';
}

/** CPU time (µs) of every readable process now; processes that vanish meanwhile are skipped. */
export function snapshotCpu(servicePid: number): CpuSnapshot {
  const processes = new Map<number, ProcessCpu>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const cpuUs = processCpuMicros(pid);
      if (cpuUs === 0) continue;
      const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      processes.set(pid, { cpuUs, group: groupOf(pid, commandLine, servicePid) });
    } catch {
      // exited between readdir and read
    }
  }
  return { atMs: performance.now(), processes };
}

/** What every group used between two snapshots, per answered request. */
export function systemCpu(before: CpuSnapshot, after: CpuSnapshot, answered: number): SystemCpu {
  const used = Object.fromEntries(GROUP_ORDER.map((g) => [g, 0])) as Record<CpuGroup, number>;
  for (const [pid, now] of after.processes) {
    const then = before.processes.get(pid)?.cpuUs ?? 0; // started during the window: all of it
    used[now.group] += Math.max(0, now.cpuUs - then);
  }
  const requests = Math.max(1, answered);
  const perRequestUs = Object.fromEntries(GROUP_ORDER.map((g) => [g, used[g] / requests])) as Record<
    CpuGroup,
    number
  >;
  const totalUs = GROUP_ORDER.reduce((sum, g) => sum + used[g], 0);
  const wallUs = Math.max(1, (after.atMs - before.atMs) * 1_000);
  return { perRequestUs, totalPerRequestUs: totalUs / requests, coresBusy: totalUs / wallUs };
}

/** `service=… loadgen=… … total=… cores_busy=…` (µs per request). */
export function formatSystemCpu(cpu: SystemCpu): string {
  const parts = GROUP_ORDER.map((g) => `${g}=${cpu.perRequestUs[g].toFixed(1)}`);
  return `${parts.join(' ')} total_us_per_req=${cpu.totalPerRequestUs.toFixed(1)} cores_busy=${cpu.coresBusy.toFixed(2)}`;
}
