export {
  assertSlotTable,
  countsOf,
  PlanningError,
  rangesOf,
  SLOT_COUNT,
  tableOf,
  type SlotRange,
  type SlotTable,
} from './slot-table.js';
export {
  MAX_SHARD_NAME_LENGTH,
  MAX_WEIGHT,
  MIN_WEIGHT,
  planSlots,
  targetCounts,
  type ShardWeight,
  type SlotMove,
  type SlotPlan,
} from './planner.js';
