export { MemoryQuota } from './memory-quota.js';
export { SpillStore } from './spill-store.js';
export { TableSorter, type SorterEvent, type SorterOutput, type TableSorterStats } from './table-sorter.js';
