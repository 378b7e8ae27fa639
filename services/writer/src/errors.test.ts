import { InvalidEventError, MysqlTimeoutError } from '@hyperscale/platform';
import { describe, expect, it } from 'vitest';
import { ApplyConflictError, classifyFailure } from './errors.js';

const server = (errno: number): Error => Object.assign(new Error(`errno ${errno}`), { errno });

describe('classifyFailure', () => {
  it.each([
    [new ApplyConflictError('lost a race'), 'retry'],
    [server(1213), 'retry'],
    [server(1205), 'retry'],
    [server(1062), 'retry'],
    [new InvalidEventError('bad'), 'poison'],
    [server(1406), 'poison'],
    [server(1292), 'poison'],
    [new MysqlTimeoutError('primary', 'query', 2000), 'transient'],
    [Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'transient'],
    [server(1146), 'transient'], // missing table: an operations problem, never the message's fault
    [server(1290), 'transient'], // read-only server
    [new TypeError('bug'), 'transient'],
  ])('%s → %s', (err, kind) => {
    expect(classifyFailure(err)).toBe(kind);
  });
});
