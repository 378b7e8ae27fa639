/** The project's Kafka topics. Dead letters go to `<topic>.dlq`. */
export const TOPICS = {
  likes: 'likes.events.v1',
  counters: 'counters.deltas.v1',
  uniques: 'uniques.events.v1',
} as const;

export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

/** Ids of users and posts: 1–64 characters of `[A-Za-z0-9_.:-]` (DESIGN §4). */
export const ID_PATTERN = '^[A-Za-z0-9_.:-]{1,64}$';
export const ID_REGEX = new RegExp(ID_PATTERN);

/** Counter names: the same alphabet, up to 200 characters. */
export const COUNTER_NAME_PATTERN = '^[A-Za-z0-9_.:-]{1,200}$';
export const COUNTER_NAME_REGEX = new RegExp(COUNTER_NAME_PATTERN);
