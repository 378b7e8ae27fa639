/**
 * `make bench [SCENARIOS="like-write-spread like-read"]`: starts a floor server, the like service and
 * the writer against the local stack (which must be up), then for each scenario measures the floor
 * with the same requests, warms the service up, measures it, and for write scenarios verifies that
 * every 2xx-acknowledged like reached MySQL and that Redis agrees. Each scenario ends with
 * `RESULT scenario=… rps=… p50_ms=… p99_ms=… errors=… floor_rps=… ratio=…`.
 */
import { createKafka, createMysqlPools, createLogger, TOPICS, type MysqlPool } from '@hyperscale/platform';
import { devTokenSigner } from './dev-token.js';
import { likeScenarios, type Scenario } from './like-scenarios.js';
import { runLoad } from './load.js';
import { freePort, httpOk, readEnvFile, repoRoot, startProcess, type RunningProcess } from './processes.js';

const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 100);
const durationSeconds = Number(process.env['BENCH_DURATION_S'] ?? 10);
const warmupSeconds = Number(process.env['BENCH_WARMUP_S'] ?? 3);
const requested = process.argv.slice(2).filter((name) => name.length > 0);

const logger = createLogger({ service: 'bench', level: 'warn' });
const runId = `b${Date.now().toString(36)}`;
const devEnv = readEnvFile(`${repoRoot}.stack/dev.env`);
const likeEnv = readEnvFile(`${repoRoot}services/like/local.env`);
const writerEnv = readEnvFile(`${repoRoot}services/writer/local.env`);
const token = devTokenSigner(devEnv['JWT_HS256_SECRET'] ?? '');
const processes: RunningProcess[] = [];

async function main(): Promise<void> {
  const floorPort = await freePort();
  processes.push(
    await startProcess({
      name: 'floor',
      script: `${repoRoot}bench/dist/floor-server.js`,
      env: { PORT: String(floorPort) },
      ready: () => httpOk(`http://127.0.0.1:${floorPort}/ready`),
    }),
  );
  const likePort = await freePort();
  const likeMetricsPort = await freePort();
  processes.push(
    await startProcess({
      name: 'like',
      script: `${repoRoot}services/like/dist/main.js`,
      env: {
        ...likeEnv,
        ...devEnv,
        HTTP_PORT: String(likePort),
        METRICS_PORT: String(likeMetricsPort),
        LOG_LEVEL: 'warn',
        RATE_LIMIT_PER_USER: '100000000',
        RATE_LIMIT_PER_IP: '100000000',
      },
      ready: () => httpOk(`http://127.0.0.1:${likeMetricsPort}/readyz`),
    }),
  );
  const writerMetricsPort = await freePort();
  processes.push(
    await startProcess({
      name: 'writer',
      script: `${repoRoot}services/writer/dist/main.js`,
      env: { ...writerEnv, METRICS_PORT: String(writerMetricsPort), LOG_LEVEL: 'warn' },
      ready: () => httpOk(`http://127.0.0.1:${writerMetricsPort}/readyz`),
    }),
  );

  const scenarios = likeScenarios(runId, token).filter(
    (scenario) => requested.length === 0 || requested.includes(scenario.name),
  );
  const unknown = requested.filter((name) => !scenarios.some((scenario) => scenario.name === name));
  if (unknown.length > 0) throw new Error(`unknown scenario(s): ${unknown.join(', ')}`);

  for (const scenario of scenarios) await measure(scenario, floorPort, likePort, likeMetricsPort);
}

async function measure(
  scenario: Scenario,
  floorPort: number,
  likePort: number,
  likeMetricsPort: number,
): Promise<void> {
  const floor = await runLoad({
    baseUrl: `http://127.0.0.1:${floorPort}`,
    connections,
    durationSeconds,
    next: scenario.next,
  });
  const warmup = await runLoad({
    baseUrl: `http://127.0.0.1:${likePort}`,
    connections,
    durationSeconds: warmupSeconds,
    next: scenario.next,
  });
  const result = await runLoad({
    baseUrl: `http://127.0.0.1:${likePort}`,
    connections,
    durationSeconds,
    next: scenario.next,
  });
  const errors = result.errors + warmup.errors;
  if (errors > 0)
    process.stdout.write(`STATUS scenario=${scenario.name} ${JSON.stringify(result.statusCounts)}\n`);
  if (scenario.writes) {
    const lost = await verifyLikes([...warmup.acknowledged, ...result.acknowledged], likePort);
    const degraded = await metricSum(likeMetricsPort, 'hyperscale_like_warm_total', 'outcome="degraded"');
    process.stdout.write(
      `VERIFY scenario=${scenario.name} acknowledged=${warmup.acknowledged.length + result.acknowledged.length} lost=${lost.lost} redis_mismatches=${lost.redisMismatches} degraded_warms_so_far=${degraded} drain_ms=${lost.drainMs}\n`,
    );
  }
  const ratio = floor.rps > 0 ? result.rps / floor.rps : 0;
  process.stdout.write(
    `RESULT scenario=${scenario.name} rps=${result.rps} p50_ms=${result.p50Ms} p99_ms=${result.p99Ms} errors=${errors} floor_rps=${floor.rps} ratio=${ratio.toFixed(2)}\n`,
  );
}

/** Waits until the writer group's offsets in MySQL equal the likes topic's high watermarks. */
async function waitWriterDrained(primary: MysqlPool, timeoutMs: number): Promise<void> {
  const kafka = createKafka({
    clientId: 'bench',
    brokers: (likeEnv['KAFKA_BROKERS'] ?? '').split(','),
    logger,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    const groupId = likeEnv['WRITER_GROUP_ID'] ?? 'hyperscale-writer';
    for (;;) {
      const highs = await admin.fetchTopicOffsets(TOPICS.likes);
      const stored = await primary.select<{ partition: number; next_offset: string }>(
        'SELECT `partition`, next_offset FROM consumer_offsets WHERE group_id = ? AND topic = ?',
        [groupId, TOPICS.likes],
      );
      const at = new Map(stored.map((row) => [Number(row.partition), BigInt(row.next_offset)]));
      if (highs.every((p) => (at.get(p.partition) ?? 0n) >= BigInt(p.high))) return;
      if (Date.now() > deadline) throw new Error(`writer not drained within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await admin.disconnect();
  }
}

/** Sums the samples of `metric` whose labels contain `labelFilter`, from a process's /metrics. */
async function metricSum(port: number, metric: string, labelFilter: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${metric}{`) && line.includes(labelFilter))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/**
 * Every acknowledged key is a distinct (user, post) pair, so MySQL's count per post must equal the
 * number of acknowledged likes on it (more is possible only for requests that timed out unanswered).
 */
async function verifyLikes(
  acknowledged: string[],
  likePort: number,
): Promise<{ lost: number; redisMismatches: number; drainMs: number }> {
  const expected = new Map<string, number>();
  for (const key of acknowledged) {
    const postId = key.slice(key.indexOf('|') + 1);
    expected.set(postId, (expected.get(postId) ?? 0) + 1);
  }
  const pools = createMysqlPools({
    primaryUrl: likeEnv['MYSQL_PRIMARY_URL'] ?? '',
    connectionLimit: 2,
    connectTimeoutMs: 2_000,
    queryTimeoutMs: 10_000,
    logger,
  });
  const started = Date.now();
  try {
    // Drained = the writer's stored offsets reached the end of every partition. Only then is
    // comparing Redis with MySQL fair: requests cut off when the load stopped may have changed
    // Redis and reached Kafka without their answer being counted as acknowledged.
    await waitWriterDrained(pools.primary, 120_000);
    const rows = await pools.primary.select<{ post_id: string; like_count: string }>(
      'SELECT post_id, like_count FROM post_stats WHERE post_id LIKE ?',
      [`${runId}-%`],
    );
    const inMysql = new Map(rows.map((row) => [row.post_id, Number(row.like_count)]));
    const drainMs = Date.now() - started;
    const lost = [...expected].reduce(
      (sum, [post, count]) => sum + Math.max(0, count - (inMysql.get(post) ?? 0)),
      0,
    );
    let redisMismatches = 0;
    const reader = token(`${runId}-reader`);
    for (const postId of expected.keys()) {
      const response = await fetch(`http://127.0.0.1:${likePort}/v1/posts/${postId}/likes`, {
        headers: { authorization: `Bearer ${reader}` },
      });
      const body = (await response.json()) as { count?: number };
      if (body.count !== inMysql.get(postId)) redisMismatches += 1;
    }
    return { lost, redisMismatches, drainMs };
  } finally {
    await pools.close();
  }
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  for (const running of processes.reverse()) await running.stop();
}
