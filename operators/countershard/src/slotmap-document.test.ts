import { describe, expect, it } from 'vitest';
import { parseMigrationStarted } from './slotmap-document.js';

describe('parseMigrationStarted', () => {
  it('reads each source shard start time', () => {
    expect(parseMigrationStarted('{"shard-0":1796539000000,"shard-1":1796539000500}')).toEqual(
      new Map([
        ['shard-0', 1796539000000],
        ['shard-1', 1796539000500],
      ]),
    );
  });

  it('gives no time (the mover then trusts no filled hash) when the annotation is missing or unreadable', () => {
    expect(parseMigrationStarted(undefined).size).toBe(0);
    expect(parseMigrationStarted('').size).toBe(0);
    expect(parseMigrationStarted('not json').size).toBe(0);
    expect(parseMigrationStarted('{"shard-0":-5}').size).toBe(0);
    expect(parseMigrationStarted('{"shard-0":"soon"}').size).toBe(0);
  });
});
