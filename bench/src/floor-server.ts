/**
 * The floor: a bare Fastify server answering every scenario's method and path with a small JSON
 * body and no other work. Measured with the same load tool and connections right before each
 * scenario, it tells what this machine can do at all, so a scenario's ratio is about the service.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
const answer = async () => ({ ok: true });
app.route({ method: ['GET', 'PUT', 'DELETE', 'POST'], url: '/*', handler: answer });
await app.listen({ host: '127.0.0.1', port: Number(process.env['PORT'] ?? 0) });
const address = app.server.address();
process.stdout.write(`ready ${typeof address === 'object' && address ? address.port : ''}\n`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
