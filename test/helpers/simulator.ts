import { afterAll, afterEach, beforeAll } from 'vitest';
import { type SimOptions, type Simulator, startSimulator } from '../../src/sim/index.js';

interface Closable {
  close(): Promise<void>;
}

export interface FileSimulator {
  /** The file's simulator, started in `beforeAll`. */
  readonly sim: Simulator;
  /** Closes `item` when this test ends, before the simulator is reset. */
  closeAfterTest<T extends Closable>(item: T): T;
}

/**
 * One simulator for the test file: started before its tests, closed after them. After each
 * test, what the test opened on it (`closeAfterTest`) is closed and the simulator forgets its
 * calls, queue and defaults.
 */
export function useSimulator(options: SimOptions = {}): FileSimulator {
  let sim: Simulator | undefined;
  const opened: Closable[] = [];
  beforeAll(async () => {
    sim = await startSimulator(options);
  });
  afterAll(async () => {
    await sim?.close();
  });
  afterEach(async () => {
    for (const item of opened.splice(0)) await item.close();
    sim?.reset();
  });
  return {
    get sim() {
      if (!sim) throw new Error('the simulator starts in beforeAll');
      return sim;
    },
    closeAfterTest(item) {
      opened.push(item);
      return item;
    },
  };
}
