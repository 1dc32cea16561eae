export {
  ANTHROPIC_IMAGE_TOKENS,
  type BodyShape,
  estimateChatInput,
  GEMINI_IMAGE_TOKENS,
  OPENAI_IMAGE_TOKENS,
  REPLY_PRIMING_TOKENS,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_NAME,
} from './chat.js';
export {
  countOutputText,
  countTokens,
  countTokensAsync,
  MAX_COUNTED_CHARS,
  type TokenCount,
  type TokenEstimate,
} from './count.js';
export {
  type Encoder,
  type EncodingChoice,
  type EncodingName,
  encodingForModel,
  loadEncoding,
} from './encoding.js';
export { MAX_PIECE_CHARS, MAX_RUN_CHARS } from './split.js';
