import { context, propagation } from '@opentelemetry/api';

/**
 * Attribution carried in OpenTelemetry baggage by an upstream service: `llm_meter.user`,
 * `llm_meter.project`, `llm_meter.feature`, and the conventional `user.id` / `enduser.id`.
 */
export function baggageAttribution(): { user?: string; project?: string; feature?: string } | null {
  const baggage = propagation.getBaggage(context.active());
  if (!baggage) return null;
  const get = (key: string) => baggage.getEntry(key)?.value;
  const user = get('llm_meter.user') ?? get('user.id') ?? get('enduser.id');
  const project = get('llm_meter.project');
  const feature = get('llm_meter.feature');
  if (user === undefined && project === undefined && feature === undefined) return null;
  const out: { user?: string; project?: string; feature?: string } = {};
  if (user !== undefined) out.user = user;
  if (project !== undefined) out.project = project;
  if (feature !== undefined) out.feature = feature;
  return out;
}
