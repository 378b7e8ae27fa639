import { describe, expect, it } from 'vitest';
import { formatSystemCpu, groupOf, systemCpu, type CpuGroup, type CpuSnapshot } from './system-cpu.js';

describe('groupOf', () => {
  it('names each server of the local stack by its command line', () => {
    expect(groupOf(10, 'node services/counter/dist/main.js', 10)).toBe('service');
    expect(groupOf(process.pid, 'node bench/dist/run.js', 10)).toBe('loadgen');
    expect(groupOf(11, '/usr/bin/node /w/services/writer/dist/main.js', 10)).toBe('writer');
    expect(groupOf(12, 'redis-server 127.0.0.1:6379', 10)).toBe('redis');
    expect(groupOf(13, 'redis-sentinel 127.0.0.1:26379 [sentinel]', 10)).toBe('sentinel');
    expect(groupOf(14, 'java -Xmx512m -cp /x/kafka/lib/* kafka.Kafka /x/server.properties', 10)).toBe(
      'kafka',
    );
    expect(groupOf(15, 'mariadbd --no-defaults --port=3306', 10)).toBe('mariadb');
    expect(groupOf(16, '/root/.cache/bin/etcd --name=x', 10)).toBe('other');
  });
});

describe('systemCpu', () => {
  const snapshot = (atMs: number, entries: [number, number, CpuGroup][]): CpuSnapshot => ({
    atMs,
    processes: new Map(entries.map(([pid, cpuUs, group]) => [pid, { cpuUs, group }])),
  });

  it('sums each group over the window per answered request, counting processes started meanwhile in full', () => {
    const before = snapshot(0, [
      [1, 1_000_000, 'service'],
      [2, 500_000, 'redis'],
      [3, 200_000, 'redis'],
    ]);
    const after = snapshot(1_000, [
      [1, 1_800_000, 'service'],
      [2, 700_000, 'redis'],
      [3, 300_000, 'redis'],
      [4, 100_000, 'kafka'], // started during the window
    ]);
    const cpu = systemCpu(before, after, 1_000);
    expect(cpu.perRequestUs.service).toBe(800);
    expect(cpu.perRequestUs.redis).toBe(300);
    expect(cpu.perRequestUs.kafka).toBe(100);
    expect(cpu.perRequestUs.writer).toBe(0);
    expect(cpu.totalPerRequestUs).toBe(1_200);
    expect(cpu.coresBusy).toBeCloseTo(1.2, 5);
    expect(formatSystemCpu(cpu)).toBe(
      'service=800.0 loadgen=0.0 writer=0.0 redis=300.0 sentinel=0.0 kafka=100.0 mariadb=0.0 other=0.0 total_us_per_req=1200.0 cores_busy=1.20',
    );
  });
});
