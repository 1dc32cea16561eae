/**
 * src/meter-internals.ts: a meter's extension points are reachable from the meter through this
 * module only; the public meter object carries none of them.
 */
import { describe, expect, it } from 'vitest';
import { createMeter } from '../../src/index.js';
import { internalsOf } from '../../src/meter-internals.js';

describe('meter internals', () => {
  it('are not on the public meter, and are found from it here', async () => {
    const meter = createMeter({ database: false });
    try {
      expect(Object.keys(meter)).not.toContain('internals');
      expect('internals' in meter).toBe(false);
      const internals = internalsOf(meter);
      expect(internals).toBeDefined();
      internals!.addSink('probe', () => {});
      expect(meter.stats().sinkErrorsBy.probe, 'a sink added here is listed by the meter').toBe(0);
    } finally {
      await meter.shutdown();
    }
  });

  it('any other object has none', () => {
    expect(internalsOf({ wrapFetch: (f: unknown) => f })).toBeUndefined();
  });
});
