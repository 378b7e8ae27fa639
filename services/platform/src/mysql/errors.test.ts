import { describe, expect, it } from 'vitest';
import { MysqlTimeoutError, isConnectionLevelError, isRetryableTransactionError } from './errors.js';

function serverError(errno: number, code = 'ER_X'): Error {
  return Object.assign(new Error(code), { errno, code, sqlState: 'HY000' });
}

describe('error classification', () => {
  it('retries only deadlocks and lock wait timeouts', () => {
    expect(isRetryableTransactionError(serverError(1213, 'ER_LOCK_DEADLOCK'))).toBe(true);
    expect(isRetryableTransactionError(serverError(1205, 'ER_LOCK_WAIT_TIMEOUT'))).toBe(true);
    expect(isRetryableTransactionError(serverError(1062, 'ER_DUP_ENTRY'))).toBe(false);
    expect(isRetryableTransactionError(new MysqlTimeoutError('primary', 'query', 10))).toBe(false);
    expect(isRetryableTransactionError('nope')).toBe(false);
  });

  it('recognises connection-level failures but not SQL errors', () => {
    expect(isConnectionLevelError(new MysqlTimeoutError('replica', 'acquire', 10))).toBe(true);
    expect(isConnectionLevelError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(
      isConnectionLevelError(
        Object.assign(new Error('x'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }),
      ),
    ).toBe(true);
    expect(isConnectionLevelError(serverError(1040, 'ER_CON_COUNT_ERROR'))).toBe(true);
    expect(isConnectionLevelError(new Error('Pool is closed.'))).toBe(true);
    expect(isConnectionLevelError(serverError(1064, 'ER_PARSE_ERROR'))).toBe(false);
    expect(isConnectionLevelError(serverError(1146, 'ER_NO_SUCH_TABLE'))).toBe(false);
    expect(isConnectionLevelError(null)).toBe(false);
  });
});
