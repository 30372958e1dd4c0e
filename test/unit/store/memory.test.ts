import { MemoryStore } from '../../../src/store/memory.js';
import { storeSuite } from './store-suite.js';

storeSuite('memory', async (clock) => new MemoryStore({ now: clock.now }));
