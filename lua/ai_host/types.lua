---@meta
--- Generated from ai_host/config_schema.json by scripts/gen_config_docs.py: do not edit;
--- change the schema and run `python scripts/gen_config_docs.py`.

---@class ai_host.Config The validated configuration (require('ai_host').get_config()).
---@field backend ai_host.BackendConfig Where the model server is.
---@field endpoints ai_host.Endpoint[] More servers, tried after `backend` for the tasks they serve.
---@field models ai_host.ModelsConfig Model per task.
---@field fallbacks ai_host.FallbacksConfig Models tried in turn when a task's model is not on a server.
---@field timeouts ai_host.Timeouts Separate network limits (a cold model load is silent for a while).
---@field explain ai_host.ExplainConfig :AIExplain context and sampling.
---@field completion ai_host.CompletionConfig Ghost text while typing.
---@field refactor ai_host.RefactorConfig :AIRefactor and generate.
---@field review ai_host.ReviewConfig GitLab merge-request review.
---@field scheduler ai_host.SchedulerConfig Slots, queue, rates and deadlines.
---@field lsp ai_host.LspConfig The LSP gate.
---@field gpu ai_host.GpuConfig The GPU gate.
---@field ui ai_host.UiConfig Float size and look.
---@field prompts ai_host.PromptsConfig Prompt templates with {{placeholders}}.
---@field keymaps ai_host.KeymapsConfig Default maps; '' disables one.
---@field security ai_host.SecurityConfig Secrets redacted, files never sent, model digests pinned.
---@field log ai_host.LogConfig Log level and file.

---@class ai_host.BackendConfig Where the model server is.
---@field kind 'ollama'|'openai' Ollama's native API or an OpenAI-compatible server.
---@field url string Base URL; '' = $OLLAMA_HOST, else http://127.0.0.1:11434.
---@field allow_remote boolean Allow a server that is not on this machine.
---@field api_key_env string Name of an environment variable holding a bearer token ('' = none).

---@class ai_host.Endpoint One entry of the list.
---@field name string? Shown by :AIStatus.
---@field kind 'ollama'|'openai'? Default 'ollama'.
---@field url string Base URL, http:// or https://.
---@field allow_remote boolean? Needed for a server not on this machine.
---@field api_key_env string? Environment variable with a bearer token.
---@field tasks string[]? Tasks it serves (default: all).

---@class ai_host.ModelsConfig Model per task.
---@field explain string Model for :AIExplain.
---@field completion string Model for ghost text; one with fill-in-the-middle (a base/coder model).
---@field refactor string Model for :AIRefactor and generate.
---@field review string Model for merge-request review.
---@field chat string Model for :AIChat and explain follow-ups; '' = models.explain (and its fallbacks).
---@field doc string Model for :AIDoc; '' = models.refactor (and its fallbacks).

---@class ai_host.FallbacksConfig Models tried in turn when a task's model is not on a server.
---@field explain string[] Models tried in turn when `models.explain` is not on a server; a missing model is remembered for 60 s.
---@field completion string[] Models tried in turn when `models.completion` is not on a server (or cannot fill in the middle); a missing model is remembered for 60 s.
---@field refactor string[] Models tried in turn when `models.refactor` is not on a server; a missing model is remembered for 60 s.
---@field review string[] Models tried in turn when `models.review` is not on a server; a missing model is remembered for 60 s.
---@field chat string[] Models tried in turn when `models.chat` is not on a server; a missing model is remembered for 60 s.
---@field doc string[] Models tried in turn when `models.doc` is not on a server; a missing model is remembered for 60 s.

---@class ai_host.Timeouts Separate network limits (a cold model load is silent for a while).
---@field connect_ms integer TCP connect limit (ms).
---@field first_byte_ms integer Limit for the first byte of a reply (ms).
---@field idle_ms integer Limit between two pieces of the model's progress (ms).

---@class ai_host.ExplainConfig :AIExplain context and sampling.
---@field context_lines integer Lines above and below the code sent as context.
---@field max_chars integer Characters of code plus context.
---@field num_ctx integer Context window asked of Ollama (its small default silently truncates).
---@field num_predict integer Most tokens to generate.
---@field temperature number Sampling temperature.
---@field keep_alive string How long Ollama keeps the model loaded afterwards.

---@class ai_host.CompletionConfig Ghost text while typing.
---@field enabled boolean Ghost text on.
---@field debounce_ms integer Pause in typing before a request (ms).
---@field context_chars integer Characters around the cursor sent (prefix and suffix together).
---@field prefix_ratio number Share of the budget before the cursor.
---@field max_lines integer Most lines in a suggestion.
---@field num_predict integer Most tokens generated.
---@field num_ctx integer Ollama context window to ask for.
---@field temperature number Sampling temperature.
---@field keep_alive string How long Ollama keeps the model loaded.
---@field fim_template ''|'qwen'|'codellama'|'deepseek'|'starcoder'|'codegemma' Fill-in-the-middle template: '' = from the model.
---@field hide_with_menu boolean No ghost text while a completion menu is open.
---@field max_file_bytes integer No ghost text in larger buffers.
---@field disabled_filetypes string[] Filetypes without ghost text.
---@field prefetch boolean Ask ahead for what follows the suggestion shown, when the model is idle.
---@field warm boolean When the cursor goes to another line, start on it at once: a new empty line asks for its suggestion, another line has the server read its text ahead.

---@class ai_host.RefactorConfig :AIRefactor and generate.
---@field context_lines integer Lines above and below sent as context.
---@field max_chars integer Characters of code plus context.
---@field num_ctx integer Ollama context window to ask for.
---@field num_predict integer Most tokens to generate.
---@field temperature number Sampling temperature.
---@field keep_alive string How long Ollama keeps the model loaded.
---@field default_instruction string Offered when none is given.
---@field keys ai_host.RefactorKeys Keys of the refactor preview.

---@class ai_host.RefactorKeys Keys of the refactor preview.
---@field accept_all string Accept every hunk.
---@field reject_all string Reject every hunk.
---@field accept_hunk string Accept the hunk under the cursor.
---@field reject_hunk string Reject the hunk under the cursor.
---@field next_hunk string Go to the next hunk.
---@field prev_hunk string Go to the previous hunk.

---@class ai_host.ReviewConfig GitLab merge-request review.
---@field num_ctx integer Ollama context window to ask for.
---@field num_predict integer Most tokens to generate.
---@field temperature number Sampling temperature.
---@field keep_alive string How long Ollama keeps the model loaded.
---@field max_inline integer Most inline comments per merge request.
---@field min_severity 'blocker'|'major'|'minor'|'info' Least severity of a finding that is posted.

---@class ai_host.SchedulerConfig Slots, queue, rates and deadlines.
---@field concurrency integer Requests at once per endpoint.
---@field queue_limit integer Requests waiting at most.
---@field completion_rate_per_s number Ghost-text requests a second.
---@field interactive_rate_per_s number Explain and refactor requests a second.
---@field completion_deadline_ms integer A ghost-text request ends after this long (ms).
---@field interactive_deadline_ms integer An explain or refactor request ends after this long (ms).
---@field avoid_model_swap boolean No ghost-text request makes a server busy with an explain load another model.

---@class ai_host.LspConfig The LSP gate.
---@field busy_above integer Pending LSP requests above which the LSP is busy.
---@field completion_wait_ms integer Ghost text waits this long for a busy LSP (ms).
---@field interactive_wait_ms integer Explain waits this long for a busy LSP (ms).

---@class ai_host.GpuConfig The GPU gate.
---@field enabled boolean The GPU gate on.
---@field device integer NVML device index.
---@field threshold number Fraction of GPU memory in use above which it is busy.
---@field cache_ms integer A reading is reused this long (ms).
---@field wait_ms integer Explain waits this long for memory (ms).
---@field on_busy 'warn'|'stop' When memory stays busy: 'warn' runs anyway with a warning, 'stop' stops.

---@class ai_host.UiConfig Float size and look.
---@field float_width number Fraction of the editor (<= 1) or columns (> 1).
---@field float_height number Fraction of the editor (<= 1) or lines (> 1).
---@field border string|string[] Any 'winborder' style.
---@field frame_ms integer Streamed text is drawn at most once per this many ms.

---@class ai_host.PromptsConfig Prompt templates with {{placeholders}}.
---@field explain_system string System message for :AIExplain.
---@field explain_user string User message for :AIExplain.
---@field refactor_system string System message for :AIRefactor and generate.
---@field refactor_user string User message for :AIRefactor; also {{instruction}}.
---@field generate_user string User message for generate-from-prompt.
---@field diagnostics_user string User message for :AIExplain on lines that have diagnostics.
---@field fix_user string User message for :AIFix; also {{actions}} (the language server's code actions).
---@field doc_user string User message for :AIDoc; also {{convention}}.
---@field chat_system string System message for :AIChat and follow-ups.
---@field chat_context string The first message of a conversation: the code it is about.

---@class ai_host.KeymapsConfig Default maps; '' disables one.
---@field explain string Explain (normal and visual mode).
---@field refactor string Refactor (normal and visual mode).
---@field generate string Generate code after the cursor's line.
---@field fix string Fix the diagnostics of the line or selection (:AIFix).
---@field doc string Write the doc comment of the function under the cursor (:AIDoc).
---@field chat string Talk about the code (:AIChat; normal and visual mode).
---@field review string Review the working tree's changes against HEAD (:AIReview).
---@field toggle string Turn ghost text on or off.
---@field accept string Accept the suggestion (insert mode).
---@field accept_word string Accept a word of it (insert mode).
---@field accept_line string Accept a line of it (insert mode).
---@field dismiss string Dismiss it (insert mode).
---@field next string Next alternative (insert mode).
---@field prev string Previous alternative (insert mode).
---@field status string :AIStatus.
---@field models string :AIModels.
---@field cancel_all string :AICancel.

---@class ai_host.SecurityConfig Secrets redacted, files never sent, model digests pinned.
---@field redact boolean Replace credentials by placeholders before any prompt leaves.
---@field deny string[] File name patterns never sent.
---@field pins table<string, string> Model name -> digest; a pinned model is used only with that digest.

---@class ai_host.LogConfig Log level and file.
---@field level 'debug'|'info'|'warning'|'error' Least level written to the log.
---@field file string Log file; '' = stdpath('log')/ai_host.log.
