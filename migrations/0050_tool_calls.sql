-- How deep an agent loop was when it made the call (tool-call rounds already in the
-- conversation), and how many of the response's tool calls had arguments that are not valid
-- JSON (cut short, or formatted differently than the caller's code expects). Rows written
-- before this migration read 0 for both.
ALTER TABLE usage ADD COLUMN tool_rounds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN invalid_tool_calls INTEGER NOT NULL DEFAULT 0;
