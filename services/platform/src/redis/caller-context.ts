import { context, type Context } from '@opentelemetry/api';
import type { Command, Redis } from 'ioredis';

const callerContext = Symbol('hyperscale.redis.callerContext');
type RememberingCommand = Command & { [callerContext]?: Context };
type QueueingPipeline = { sendCommand(command: Command): unknown };

/**
 * Sends every command of `client` in the context of the code that issued it.
 *
 * With auto-pipelining, ioredis queues the commands of one tick in a pipeline and sends them from a
 * `setImmediate` scheduled by the FIRST of them, so all run in that first caller's context. The
 * ioredis instrumentation starts its span when a command is sent, so a background command (the
 * slot-map acknowledgement, say) batched behind a request's script would show up in that
 * request's trace, and a request's command batched behind a background one would lose its span
 * (`requireParentSpan`). Here each command remembers the context it was queued in, and sending
 * restores it. Without an OpenTelemetry context manager every context is the root one and this
 * costs one comparison per command.
 */
export function sendInCallerContext(client: Redis): void {
  const createPipeline = client.pipeline.bind(client);
  client.pipeline = (...args: Parameters<Redis['pipeline']>) => {
    const pipeline = createPipeline(...args);
    const queueing = pipeline as unknown as QueueingPipeline;
    const queue = queueing.sendCommand.bind(pipeline);
    queueing.sendCommand = (command: RememberingCommand) => {
      command[callerContext] = context.active();
      return queue(command);
    };
    return pipeline;
  };

  const send = client.sendCommand.bind(client);
  client.sendCommand = (command: RememberingCommand, stream?: Parameters<Redis['sendCommand']>[1]) => {
    const caller = command[callerContext];
    if (caller === undefined || caller === context.active()) return send(command, stream);
    return context.with(caller, () => send(command, stream));
  };
}
