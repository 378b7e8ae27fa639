import { Writable } from 'node:stream';
import { logLevel } from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { entryFields, kafkaLevelFor, pinoLogCreator, pinoMethodFor } from './log-bridge.js';

describe('level mapping', () => {
  it('maps kafkajs levels to pino methods', () => {
    expect(pinoMethodFor(logLevel.NOTHING)).toBeNull();
    expect(pinoMethodFor(logLevel.ERROR)).toBe('error');
    expect(pinoMethodFor(logLevel.WARN)).toBe('warn');
    expect(pinoMethodFor(logLevel.INFO)).toBe('info');
    expect(pinoMethodFor(logLevel.DEBUG)).toBe('debug');
  });

  it('derives the kafkajs level from the pino level value', () => {
    expect(kafkaLevelFor(10)).toBe(logLevel.DEBUG); // trace
    expect(kafkaLevelFor(20)).toBe(logLevel.DEBUG);
    expect(kafkaLevelFor(30)).toBe(logLevel.INFO);
    expect(kafkaLevelFor(40)).toBe(logLevel.WARN);
    expect(kafkaLevelFor(50)).toBe(logLevel.ERROR);
    expect(kafkaLevelFor(60)).toBe(logLevel.ERROR); // fatal
    expect(kafkaLevelFor(Infinity)).toBe(logLevel.NOTHING); // silent
  });
});

describe('pinoLogCreator', () => {
  function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    return { logger: pino({ level: 'debug' }, stream), lines };
  }

  it('writes kafkajs entries at the mapped pino level with their fields', async () => {
    const { logger, lines } = capture();
    const write = pinoLogCreator(logger)(logLevel.DEBUG);
    write({
      namespace: 'Producer',
      level: logLevel.WARN,
      label: 'WARN',
      log: { timestamp: 'ts', message: 'hello', retryCount: 2, level: 'shadow' },
    });
    write({ namespace: 'x', level: logLevel.NOTHING, label: '', log: { timestamp: '', message: 'no' } });
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: 'hello',
      component: 'kafkajs',
      kafkaNamespace: 'Producer',
      retryCount: 2,
      kafka_level: 'shadow',
    });
  });

  it('drops kafkajs bookkeeping fields', () => {
    expect(
      entryFields({
        namespace: 'n',
        level: logLevel.INFO,
        label: 'INFO',
        log: { timestamp: 't', message: 'm', logger: 'kafkajs', groupId: 'g' },
      }),
    ).toEqual({ kafkaNamespace: 'n', groupId: 'g' });
  });
});
