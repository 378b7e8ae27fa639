// Prints a bearer token for local development: `make -s token USER=alice [SCOPE=counters:write]`.
// Signed with JWT_HS256_SECRET from the environment when set (a cluster's secret, k8s/dev/README.md),
// else with the one in .stack/dev.env (created by hack/dev-env.sh); valid for 24 hours.
import { readFileSync } from 'node:fs';
import { signDevToken } from '@hyperscale/platform';

const [userId, scope] = process.argv.slice(2);
if (!userId) {
  process.stderr.write('usage: make token USER=<userId> [SCOPE=<scope>[,<scope>]]\n');
  process.exit(2);
}
const devEnv = () =>
  Object.fromEntries(
    readFileSync(new URL('../.stack/dev.env', import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
const secret = process.env.JWT_HS256_SECRET || devEnv().JWT_HS256_SECRET;
const scopes = scope ? scope.split(',').filter(Boolean) : [];
process.stdout.write(`${await signDevToken({ secret, userId, scopes })}\n`);
