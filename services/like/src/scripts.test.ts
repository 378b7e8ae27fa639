import { describe, expect, it } from 'vitest';
import { parseAckedPosition } from './scripts.js';

describe('parseAckedPosition', () => {
  it('reads <partition>:<offset>, keeping the offset exact', () => {
    expect(parseAckedPosition('3:9007199254740993')).toEqual({ partition: 3, offset: '9007199254740993' });
  });

  it('treats absent or garbled values as unknown', () => {
    for (const value of [null, '', '3', ':5', '3:', '3:-1', 'a:1', '1:2:3', ' 1:2']) {
      expect(parseAckedPosition(value), String(value)).toBeUndefined();
    }
  });
});
