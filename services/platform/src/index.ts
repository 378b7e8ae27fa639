export * from './redis/index.js';
export * from './mysql/index.js';
export * from './kafka/index.js';
export * from './resilience/index.js';
