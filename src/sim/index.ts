export { DEFAULT_BEHAVIOR } from './behavior.js';
export type { Framing } from './frames.js';
export { startSimulator } from './server.js';
export {
  countAnthropicInput,
  countChatInput,
  countGeminiEmbedInput,
  countGeminiInput,
  countMessages,
  countOllamaGenerateInput,
  countPlainInputs,
  countResponsesInput,
  outputWords,
  WORDS,
} from './text.js';
export type {
  Behavior,
  Fault,
  SimCall,
  SimEndpoint,
  SimOptions,
  SimOutcome,
  SimProvider,
  Simulator,
  TimingReport,
} from './types.js';
