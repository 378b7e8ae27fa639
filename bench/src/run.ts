/**
 * `make bench [SCENARIOS="like-write-spread counter-read"]`: against the local stack (which must be
 * up) it starts a floor server, the services the chosen scenarios need and the writer. For each
 * scenario it measures the floor with the same requests, warms the service up, measures it, for
 * write scenarios verifies — after the writer drained the topic — that every 2xx-acknowledged write
 * reached MySQL and that the service (Redis) reports what MySQL holds, then measures the floor
 * again; the ratio is against the higher floor (`FLOOR … before_rps after_rps`). Each scenario ends with
 * `RESULT scenario=… rps=… p50_ms=… p99_ms=… errors=… floor_rps=… ratio=…`.
 */
import { createMysqlPools, createLogger, TOPICS, type MysqlPool } from '@hyperscale/platform';
import { counterScenarios } from './counter-scenarios.js';
import { devTokenSigner } from './dev-token.js';
import { likeScenarios, type Scenario } from './like-scenarios.js';
import { waitDrained } from './drain.js';
import { REBALANCE, runRebalance } from './rebalance.js';
import { WRITER_DELTAS, runWriterDeltas } from './writer-deltas.js';
import { formatWriterWindow, scrapeWriterTotals } from './metrics-scrape.js';
import { runLoad } from './load.js';
import {
  freePort,
  httpOk,
  processCpuMicros,
  readEnvFile,
  repoRoot,
  startProcess,
  type RunningProcess,
} from './processes.js';
import { formatSystemCpu, snapshotCpu, systemCpu, type SystemCpu } from './system-cpu.js';

const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 100);
const durationSeconds = Number(process.env['BENCH_DURATION_S'] ?? 10);
const warmupSeconds = Number(process.env['BENCH_WARMUP_S'] ?? 3);
// Rounds of the load scenarios, each with freshly started processes; > 1 adds a MEDIAN line per
// scenario. Two starts of the same Node process can differ by 10-30 % in CPU per request.
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 1);
const requested = process.argv.slice(2).filter((name) => name.length > 0);

const logger = createLogger({ service: 'bench', level: 'warn' });
const runId = `b${Date.now().toString(36)}`;
const devEnv = readEnvFile(`${repoRoot}.stack/dev.env`);
const serviceEnv = {
  like: readEnvFile(`${repoRoot}services/like/local.env`),
  counter: readEnvFile(`${repoRoot}services/counter/local.env`),
};
const writerEnv = readEnvFile(`${repoRoot}services/writer/local.env`);
const token = devTokenSigner(devEnv['JWT_HS256_SECRET'] ?? '');
const processes: RunningProcess[] = [];

interface Ports {
  http: number;
  metrics: number;
  pid: number;
}

async function startService(service: 'like' | 'counter'): Promise<Ports> {
  const ports = { http: await freePort(), metrics: await freePort() };
  const started = await startProcess({
    name: service,
    script: `${repoRoot}services/${service}/dist/main.js`,
    env: {
      ...serviceEnv[service],
      ...devEnv,
      HTTP_PORT: String(ports.http),
      METRICS_PORT: String(ports.metrics),
      LOG_LEVEL: 'warn',
      // The bench measures the service, not its rate limits' verdicts (the checks still run).
      RATE_LIMIT_PER_USER: '100000000',
      RATE_LIMIT_PER_IP: '100000000',
      // Its own even split over REDIS_MASTER_NAMES, not the operator's ConfigMap of `make up`.
      SLOTMAP_CONFIGMAP: '',
      KUBECONFIG: '',
    },
    ready: () => httpOk(`http://127.0.0.1:${ports.metrics}/readyz`),
  });
  processes.push(started);
  return { ...ports, pid: started.child.pid ?? 0 };
}

async function main(): Promise<void> {
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('BENCH_ROUNDS must be an integer ≥ 1');
  // Ids (posts, counter names, users) are per round, so each round's verification sees only its own writes.
  const scenariosOf = (id: string): RoundScenario[] =>
    [...likeScenarios(id, token), ...counterScenarios(id, token)]
      .filter((scenario) => requested.length === 0 || requested.includes(scenario.name))
      .map((scenario) => ({ ...scenario, runId: id }));
  const scenarios = scenariosOf(runId);
  const unknown = requested.filter(
    (name) =>
      name !== REBALANCE && name !== WRITER_DELTAS && !scenarios.some((scenario) => scenario.name === name),
  );
  if (unknown.length > 0) throw new Error(`unknown scenario(s): ${unknown.join(', ')}`);
  if (scenarios.length > 0) {
    const outcomes: Outcome[] = [];
    for (let round = 1; round <= rounds; round += 1) {
      if (rounds > 1) process.stdout.write(`ROUND ${round}/${rounds}\n`);
      outcomes.push(...(await runScenarios(round === 1 ? scenarios : scenariosOf(`${runId}r${round}`))));
      // Stopped after each round (the next starts its own), and before the scenarios below, which
      // must have the machine to themselves.
      for (const running of processes.splice(0).reverse()) await running.stop();
    }
    if (rounds > 1) printMedians(outcomes);
  }
  if (requested.length === 0 || requested.includes(WRITER_DELTAS)) await runWriterDeltas();
  if (requested.length === 0 || requested.includes(REBALANCE)) await runRebalance();
}

/** A server the load is pointed at: its port and its process (for CPU per request). */
interface Target {
  port: number;
  pid: number;
}

/** What one round measured of one scenario (for the MEDIAN line). */
interface Outcome {
  scenario: string;
  rps: number;
  p99Ms: number;
  ratio: number;
  serviceUs: number;
  errors: number;
}

/**
 * Per scenario over the rounds: `MEDIAN scenario=… rounds=… rps=… p99_ms=… ratio=… ratio_min=…
 * ratio_max=… service_us_per_req=… errors=…` (medians, the ratio's range, errors summed).
 */
function printMedians(outcomes: readonly Outcome[]): void {
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1
      ? (sorted[middle] as number)
      : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  };
  for (const name of new Set(outcomes.map((outcome) => outcome.scenario))) {
    const of = outcomes.filter((outcome) => outcome.scenario === name);
    const ratios = of.map((outcome) => outcome.ratio);
    process.stdout.write(
      `MEDIAN scenario=${name} rounds=${of.length} rps=${Math.round(median(of.map((o) => o.rps)))} p99_ms=${median(of.map((o) => o.p99Ms))} ratio=${median(ratios).toFixed(2)} ratio_min=${Math.min(...ratios).toFixed(2)} ratio_max=${Math.max(...ratios).toFixed(2)} service_us_per_req=${median(of.map((o) => o.serviceUs)).toFixed(1)} errors=${of.reduce((sum, o) => sum + o.errors, 0)}\n`,
    );
  }
}

/** A scenario of one round, with the id its posts, names and users start with (`<runId>-…`). */
type RoundScenario = Scenario & { runId: string };

async function runScenarios(scenarios: RoundScenario[]): Promise<Outcome[]> {
  const floorPort = await freePort();
  const floorProcess = await startProcess({
    name: 'floor',
    script: `${repoRoot}bench/dist/floor-server.js`,
    env: { PORT: String(floorPort) },
    ready: () => httpOk(`http://127.0.0.1:${floorPort}/ready`),
  });
  processes.push(floorProcess);
  const floor: Target = { port: floorPort, pid: floorProcess.child.pid ?? 0 };
  // The counter app with constant answers (see counter-app-floor.ts), for the counter scenarios.
  let appFloor: Target | undefined;
  if (scenarios.some((scenario) => scenario.appFloor === true)) {
    const port = await freePort();
    const appFloorProcess = await startProcess({
      name: 'counter-app-floor',
      script: `${repoRoot}bench/dist/counter-app-floor.js`,
      env: { PORT: String(port), JWT_HS256_SECRET: devEnv['JWT_HS256_SECRET'] ?? '' },
      ready: () => httpOk(`http://127.0.0.1:${port}/openapi.json`),
    });
    processes.push(appFloorProcess);
    appFloor = { port, pid: appFloorProcess.child.pid ?? 0 };
  }
  // Redis INCRBY + awaited Kafka event and nothing else (see counter-path-floor.ts).
  let pathFloor: Target | undefined;
  if (scenarios.some((scenario) => scenario.pathFloor === true)) {
    const port = await freePort();
    const counterEnv = serviceEnv.counter;
    const pathFloorProcess = await startProcess({
      name: 'counter-path-floor',
      script: `${repoRoot}bench/dist/counter-path-floor.js`,
      env: {
        PORT: String(port),
        REDIS_SENTINELS: counterEnv['REDIS_SENTINELS'] ?? '',
        REDIS_MASTER_NAMES: counterEnv['REDIS_MASTER_NAMES'] ?? '',
        KAFKA_BROKERS: counterEnv['KAFKA_BROKERS'] ?? '',
      },
      ready: () => httpOk(`http://127.0.0.1:${port}/ready`),
    });
    processes.push(pathFloorProcess);
    pathFloor = { port, pid: pathFloorProcess.child.pid ?? 0 };
  }
  const services = new Map<'like' | 'counter', Ports>();
  for (const service of new Set(scenarios.map((scenario) => scenario.service))) {
    services.set(service, await startService(service));
  }
  const writerMetricsPort = await freePort();
  processes.push(
    await startProcess({
      name: 'writer',
      script: `${repoRoot}services/writer/dist/main.js`,
      env: { ...writerEnv, METRICS_PORT: String(writerMetricsPort), LOG_LEVEL: 'warn' },
      ready: () => httpOk(`http://127.0.0.1:${writerMetricsPort}/readyz`),
    }),
  );

  const pools = createMysqlPools({
    primaryUrl: writerEnv['MYSQL_PRIMARY_URL'] ?? '',
    connectionLimit: 2,
    connectTimeoutMs: 2_000,
    queryTimeoutMs: 10_000,
    logger,
  });
  const outcomes: Outcome[] = [];
  try {
    for (const scenario of scenarios) {
      const ports = services.get(scenario.service);
      if (ports === undefined) throw new Error(`${scenario.service} was not started`);
      outcomes.push(
        await measure(
          scenario,
          floor,
          scenario.appFloor === true ? appFloor : undefined,
          scenario.pathFloor === true ? pathFloor : undefined,
          ports,
          pools.primary,
          writerMetricsPort,
        ),
      );
    }
  } finally {
    await pools.close();
  }
  return outcomes;
}

/**
 * CPU per answered request over one load window: of the server under load and of this process
 * (the load generator). Unlike req/s it does not depend on how much of the two shared cores the
 * server happened to get, so it is the figure to compare when changing a service.
 */
interface CpuPerRequest {
  serverUs: number;
  loadgenUs: number;
}

async function measure(
  scenario: RoundScenario,
  floorTarget: Target,
  appFloorTarget: Target | undefined,
  pathFloorTarget: Target | undefined,
  ports: Ports,
  primary: MysqlPool,
  writerMetricsPort: number,
): Promise<Outcome> {
  const load = (port: number, seconds: number) =>
    runLoad({
      baseUrl: `http://127.0.0.1:${port}`,
      connections,
      durationSeconds: seconds,
      next: scenario.next,
    });
  const cpu: Record<string, CpuPerRequest> = {};
  const machine: Record<string, SystemCpu> = {};
  const loadMeasured = async (label: string, target: Target) => {
    const server = processCpuMicros(target.pid);
    const loadgen = process.cpuUsage();
    const everything = label === 'service' || label === 'path_floor' ? snapshotCpu(target.pid) : undefined;
    const result = await load(target.port, durationSeconds);
    const answered = Math.max(1, result.ok + result.errors);
    const own = process.cpuUsage(loadgen);
    if (everything !== undefined) machine[label] = systemCpu(everything, snapshotCpu(target.pid), answered);
    cpu[label] = {
      serverUs: (processCpuMicros(target.pid) - server) / answered,
      loadgenUs: (own.user + own.system) / answered,
    };
    return result;
  };
  const floorBefore = await loadMeasured('floor', floorTarget);
  const appFloor = appFloorTarget === undefined ? undefined : await loadMeasured('app_floor', appFloorTarget);
  if (appFloor !== undefined && appFloor.errors > 0)
    throw new Error(
      `${scenario.name}: the app floor answered ${appFloor.errors} errors ${JSON.stringify(appFloor.statusCounts)}`,
    );
  const pathFloor =
    pathFloorTarget === undefined ? undefined : await loadMeasured('path_floor', pathFloorTarget);
  if (pathFloor !== undefined && pathFloor.errors > 0)
    throw new Error(
      `${scenario.name}: the path floor answered ${pathFloor.errors} errors ${JSON.stringify(pathFloor.statusCounts)}`,
    );
  for (const request of scenario.prepare?.() ?? []) {
    const response = await fetch(`http://127.0.0.1:${ports.http}${request.path}`, {
      method: request.method,
      headers: { ...request.headers, 'content-type': 'application/json' },
      ...(request.body === undefined ? {} : { body: request.body }),
    });
    if (!response.ok)
      throw new Error(`${scenario.name}: preparing ${request.path} answered ${response.status}`);
  }
  const warmup = await load(ports.http, warmupSeconds);
  const writerBefore = await scrapeWriterTotals(writerMetricsPort);
  const result = await loadMeasured('service', { port: ports.http, pid: ports.pid });
  const writerAfter = await scrapeWriterTotals(writerMetricsPort);
  const errors = result.errors + warmup.errors;
  if (errors > 0)
    process.stdout.write(`STATUS scenario=${scenario.name} ${JSON.stringify(result.statusCounts)}\n`);
  const acknowledged = [...warmup.acknowledged, ...result.acknowledged];
  const verified =
    scenario.verify === 'likes'
      ? await verifyLikes(acknowledged, ports, primary, scenario.runId)
      : scenario.verify === 'counters'
        ? await verifyCounters(acknowledged, ports, primary, scenario.runId)
        : scenario.verify === 'uniques'
          ? await verifyUniques(acknowledged, ports, primary, scenario.runId)
          : undefined;
  if (verified !== undefined) process.stdout.write(`VERIFY scenario=${scenario.name} ${verified}\n`);
  // The floor again, once the writer drained: on a shared VM one 10 s window can run well below
  // what the machine gives; the ratio is taken against the better of the two, never a dip.
  const floorAfter = await load(floorTarget.port, durationSeconds);
  const floor = floorAfter.rps > floorBefore.rps ? floorAfter : floorBefore;
  process.stdout.write(
    `FLOOR scenario=${scenario.name} before_rps=${floorBefore.rps} after_rps=${floorAfter.rps}\n`,
  );
  const ratio = floor.rps > 0 ? result.rps / floor.rps : 0;
  if (appFloor !== undefined)
    process.stdout.write(
      `APPFLOOR scenario=${scenario.name} app_floor_rps=${appFloor.rps} app_floor_p99_ms=${appFloor.p99Ms} app_floor_ratio=${(appFloor.rps / floor.rps).toFixed(2)} service_to_app_floor=${(result.rps / appFloor.rps).toFixed(2)}\n`,
    );
  process.stdout.write(
    `CPU scenario=${scenario.name} ${Object.entries(cpu)
      .map(
        ([label, c]) =>
          `${label}_us_per_req=${c.serverUs.toFixed(1)} ${label}_loadgen_us_per_req=${c.loadgenUs.toFixed(1)}`,
      )
      .join(' ')}\n`,
  );
  const pathFloorMachine = machine['path_floor'];
  if (pathFloor !== undefined && pathFloorMachine !== undefined)
    process.stdout.write(
      `PATHFLOOR scenario=${scenario.name} path_floor_rps=${pathFloor.rps} path_floor_p99_ms=${pathFloor.p99Ms} path_floor_ratio=${(pathFloor.rps / floor.rps).toFixed(2)} service_to_path_floor=${(result.rps / pathFloor.rps).toFixed(2)} ${formatSystemCpu(pathFloorMachine)}\n`,
    );
  const serviceMachine = machine['service'];
  if (serviceMachine !== undefined)
    process.stdout.write(`SYSCPU scenario=${scenario.name} ${formatSystemCpu(serviceMachine)}\n`);
  if (verified !== undefined)
    process.stdout.write(
      `WRITER scenario=${scenario.name} ${formatWriterWindow(writerBefore, writerAfter, durationSeconds)}\n`,
    );
  process.stdout.write(
    `RESULT scenario=${scenario.name} rps=${result.rps} p50_ms=${result.p50Ms} p99_ms=${result.p99Ms} errors=${errors} floor_rps=${floor.rps} ratio=${ratio.toFixed(2)}\n`,
  );
  return {
    scenario: scenario.name,
    rps: result.rps,
    p99Ms: result.p99Ms,
    ratio,
    serviceUs: cpu['service']?.serverUs ?? 0,
    errors,
  };
}

/** Counts occurrences of each key. */
function tally(keys: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/** Acknowledged writes missing from `stored` (more stored is possible for unanswered requests). */
function missing(expected: Map<string, number>, stored: Map<string, number>): number {
  return [...expected].reduce((sum, [key, count]) => sum + Math.max(0, count - (stored.get(key) ?? 0)), 0);
}

async function getJson<T>(ports: Ports, path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${ports.http}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token(`${runId}-reader`)}`, 'content-type': 'application/json' },
  });
  return (await response.json()) as T;
}

/** Every acknowledged key is a distinct (user, post) pair: each adds exactly one like. */
async function verifyLikes(
  acknowledged: string[],
  ports: Ports,
  primary: MysqlPool,
  id: string,
): Promise<string> {
  const expected = tally(acknowledged.map((key) => key.slice(key.indexOf('|') + 1)));
  const drainMs = await waitDrained(primary, writerEnv, TOPICS.likes);
  const rows = await primary.select<{ post_id: string; like_count: string }>(
    'SELECT post_id, like_count FROM post_stats WHERE post_id LIKE ?',
    [`${id}-%`],
  );
  const stored = new Map(rows.map((row) => [row.post_id, Number(row.like_count)]));
  let redisMismatches = 0;
  for (const postId of expected.keys()) {
    const body = await getJson<{ count?: number }>(ports, `/v1/posts/${postId}/likes`);
    if (body.count !== stored.get(postId)) redisMismatches += 1;
  }
  return `acknowledged=${acknowledged.length} lost=${missing(expected, stored)} redis_mismatches=${redisMismatches} drain_ms=${drainMs}`;
}

/** Every acknowledged key is one increment by 1 of that counter. */
async function verifyCounters(
  acknowledged: string[],
  ports: Ports,
  primary: MysqlPool,
  id: string,
): Promise<string> {
  const expected = tally(acknowledged);
  const drainMs = await waitDrained(primary, writerEnv, TOPICS.counters);
  const rows = await primary.select<{ name: string; value: string }>(
    'SELECT name, value FROM counters WHERE name LIKE ?',
    [`${id}-%`],
  );
  const stored = new Map(rows.map((row) => [row.name, Number(row.value)]));
  let redisMismatches = 0;
  const names = [...expected.keys()];
  for (let i = 0; i < names.length; i += 100) {
    const body = await getJson<{ results?: { name: string; value: number }[] }>(
      ports,
      '/v1/counters:batchGet',
      {
        method: 'POST',
        body: JSON.stringify({ names: names.slice(i, i + 100) }),
      },
    );
    for (const entry of body.results ?? []) if (entry.value !== stored.get(entry.name)) redisMismatches += 1;
  }
  return `acknowledged=${acknowledged.length} lost=${missing(expected, stored)} redis_mismatches=${redisMismatches} drain_ms=${drainMs}`;
}

/** Every acknowledged key is a distinct user active today on one name. */
async function verifyUniques(
  acknowledged: string[],
  ports: Ports,
  primary: MysqlPool,
  id: string,
): Promise<string> {
  const name = `${id}-dau`;
  const day = new Date().toISOString().slice(0, 10);
  const drainMs = await waitDrained(primary, writerEnv, TOPICS.uniques);
  const rows = await primary.select<{ user_id: string }>(
    'SELECT user_id FROM unique_daily WHERE name = ? AND day = ?',
    [name, day],
  );
  const stored = new Set(rows.map((row) => row.user_id));
  const lost = acknowledged.filter((userId) => !stored.has(userId)).length;
  const served = await getJson<{ count?: number }>(ports, `/v1/uniques/${name}?day=${day}`);
  return `acknowledged=${acknowledged.length} lost=${lost} mysql_day_count=${stored.size} service_day_count=${served.count ?? 'none'} drain_ms=${drainMs}`;
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
} finally {
  for (const running of processes.reverse()) await running.stop();
  // A client a failed scenario left open must not keep the bench alive.
  process.exit(process.exitCode ?? 0);
}
