import { createHash } from 'node:crypto';
import { openaiError } from './faults.js';
import { openaiHeaders } from './openai.js';
import { inputOnlyPlan } from './plan.js';
import { countPlainInputs } from './text.js';
import { bodyOnlyWire, optionalNumber, type Prepared, type RouteInput } from './wire.js';

export const EMBEDDING_DIMENSIONS = 8;

/** A deterministic unit vector per input, so equal inputs embed equally. */
export function embed(input: unknown, dimensions: number): number[] {
  const seed = createHash('sha256').update(JSON.stringify(input)).digest();
  const raw = Array.from({ length: dimensions }, (_, i) => seed[i % seed.length]! / 127.5 - 1 + i * 1e-3);
  const norm = Math.hypot(...raw) || 1;
  return raw.map((x) => Math.fround(x / norm));
}

function embeddingInputs(input: unknown): unknown[] {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) return [];
  return input.every((x) => typeof x === 'number') ? [input] : input;
}

// https://platform.openai.com/docs/api-reference/embeddings/object
export function embeddingsRoute(input: RouteInput): Prepared {
  const { body } = input;
  const inputTokens = countPlainInputs(body.input);
  const plan = inputOnlyPlan(input, inputTokens, 'emb-');
  const dimensions = optionalNumber(body.dimensions) ?? EMBEDDING_DIMENSIONS;
  const base64 = body.encoding_format === 'base64';
  const wire = bodyOnlyWire(
    () => ({
      object: 'list',
      data: embeddingInputs(body.input).map((item, index) => {
        const vector = embed(item, dimensions);
        return {
          object: 'embedding',
          index,
          embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
        };
      }),
      model: input.model,
      usage: { prompt_tokens: inputTokens, total_tokens: inputTokens },
    }),
    (p, ms) => openaiHeaders(p, ms, input.azure),
    (fault, behavior, p) => openaiError(fault, behavior, p.model, input.azure),
  );
  return { plan, stream: false, wire };
}
