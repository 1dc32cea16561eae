import { afterEach, describe, expect, it } from 'vitest';
import { observableCounter, observeTallies } from '../../../src/telemetry/instruments/register.js';
import { observeSource, type SourceUnderTest } from '../../helpers/scrape.js';

let source: SourceUnderTest | undefined;
afterEach(() => source?.shutdown());

const spec = (name: string) => ({ name, unit: '{thing}', description: `${name} help` });

describe('registering a source', () => {
  it('maps each stats field to its own counter and pending to a gauge', async () => {
    source = observeSource((registry) =>
      observeTallies(registry, { a: spec('test.a'), b: spec('test.b') }, spec('test.pending'), () => ({
        a: 1,
        b: 2,
        pending: 3,
      })),
    );
    const m = (await source.scrape()).exposition;
    expect([m.sum('test_a_total'), m.sum('test_b_total'), m.sum('test_pending')]).toEqual([1, 2, 3]);
    expect(m.types.get('test_pending')).toBe('gauge');
  });

  it('logs a source that throws and still serves the others', async () => {
    source = observeSource((registry) => {
      const broken = observableCounter(registry.meter, spec('test.broken'));
      registry.batch([broken], () => {
        throw new Error('stats() failed');
      });
      const fine = observableCounter(registry.meter, spec('test.fine'));
      registry.batch([fine], (result) => result.observe(fine, 4));
    });
    const m = (await source.scrape()).exposition;
    expect(m.sum('test_fine_total')).toBe(4);
    expect(m.find('test_broken_total')).toEqual([]);
    expect(source.logged).toEqual(['llm-meter: a metrics callback failed']);
  });

  it('stops reading every source it registered once stopped', async () => {
    let reads = 0;
    source = observeSource((registry) =>
      observeTallies(registry, { a: spec('test.a') }, spec('test.pending'), () => ({
        a: ++reads,
        pending: 0,
      })),
    );
    await source.scrape();
    source.stop();
    await source.scrape();
    expect(reads).toBe(1);
  });
});
