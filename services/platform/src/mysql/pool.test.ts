import mysql from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { bindParams } from './pool.js';

describe('bindParams', () => {
  it('binds bigints and safe-integer numbers as BIGINT so server arithmetic stays integer', () => {
    const [a, b, c] = bindParams([9007199254740993n, 42, -7n]);
    expect(a).toEqual(mysql.TypedParameter.LONGLONG(9007199254740993n));
    expect(b).toEqual(mysql.TypedParameter.LONGLONG(42));
    expect(c).toEqual(mysql.TypedParameter.LONGLONG(-7n));
  });

  it('uses unsigned BIGINT above 2^63-1 and rejects values beyond 64 bits', () => {
    expect(bindParams([2n ** 64n - 1n])[0]).toEqual(mysql.TypedParameter.LONGLONG.unsigned(2n ** 64n - 1n));
    expect(() => bindParams([2n ** 64n])).toThrow(RangeError);
    expect(() => bindParams([-(2n ** 63n) - 1n])).toThrow(RangeError);
  });

  it('leaves fractions, unsafe numbers, strings, dates, buffers, booleans and null alone', () => {
    const date = new Date(0);
    const buf = Buffer.from('x');
    expect(bindParams([0.05, 2 ** 60, 'x', date, buf, true, null])).toEqual([
      0.05,
      2 ** 60,
      'x',
      date,
      buf,
      true,
      null,
    ]);
  });
});
