export * from './topics.js';
export * from './like-event.js';
