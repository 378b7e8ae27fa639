import { describe, expect, it } from 'vitest';
import { sameSecret } from './admin.js';

describe('sameSecret', () => {
  it('compares whole secrets of any length', () => {
    expect(sameSecret('0123456789abcdef', '0123456789abcdef')).toBe(true);
    expect(sameSecret('0123456789abcdeF', '0123456789abcdef')).toBe(false);
    expect(sameSecret('0123456789abcdef0', '0123456789abcdef')).toBe(false);
    expect(sameSecret('', '0123456789abcdef')).toBe(false);
  });
});
