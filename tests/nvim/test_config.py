"""setup(): merge and validate, with a dotted-path message for every kind of mistake; default keymaps."""

from __future__ import annotations

import json

import pytest

from ai_host import config
from ai_host.errors import ConfigError
from tests.conftest import wait_until

pytestmark = pytest.mark.nvim


def setup_error(nvim, opts_lua: str) -> str:
    return nvim.exec_lua(f"local ok, err = pcall(require('ai_host').setup, {opts_lua}); return ok and '' or err")


@pytest.mark.parametrize(
    "opts, message",
    [
        ("'x'", "ai_host: setup() options should be a table, not string"),
        ("{nope = 1}", "ai_host: `nope` is not an option (see :help ai_host-config)"),
        ("{explain = {nope = 1}}", "ai_host: `explain.nope` is not an option (see :help ai_host-config)"),
        ("{explain = 3}", "ai_host: `explain` should be table, not number"),
        ("{explain = {context_lines = '3'}}", "ai_host: `explain.context_lines` should be number, not string"),
        ("{explain = {context_lines = -1}}", "ai_host: `explain.context_lines` should be 0 or more, not -1"),
        ("{explain = {max_chars = 0}}", "ai_host: `explain.max_chars` should be a positive number, not 0"),
        ("{explain = {num_ctx = 0}}", "ai_host: `explain.num_ctx` should be a positive number, not 0"),
        ("{explain = {num_predict = -5}}", "ai_host: `explain.num_predict` should be a positive number, not -5"),
        ("{explain = {temperature = 'hot'}}", "ai_host: `explain.temperature` should be number, not string"),
        ("{explain = {keep_alive = 5}}", "ai_host: `explain.keep_alive` should be string, not number"),
        ("{backend = {kind = 'vllm'}}", "ai_host: `backend.kind` should be one of 'ollama', 'openai', not 'vllm'"),
        ("{backend = {url = 1}}", "ai_host: `backend.url` should be string, not number"),
        ("{backend = {allow_remote = 'yes'}}", "ai_host: `backend.allow_remote` should be boolean, not string"),
        ("{backend = {api_key_env = false}}", "ai_host: `backend.api_key_env` should be string, not boolean"),
        ("{timeouts = {connect_ms = 0}}", "ai_host: `timeouts.connect_ms` should be a positive number, not 0"),
        ("{timeouts = {first_byte_ms = -1}}", "ai_host: `timeouts.first_byte_ms` should be a positive number, not -1"),
        ("{timeouts = {idle_ms = 'x'}}", "ai_host: `timeouts.idle_ms` should be number, not string"),
        ("{models = {explain = ''}}", "ai_host: `models.explain` should not be empty"),
        ("{models = {explain = 7}}", "ai_host: `models.explain` should be string, not number"),
        ("{models = {completion = ''}}", "ai_host: `models.completion` should not be empty"),
        ("{models = {refactor = ''}}", "ai_host: `models.refactor` should not be empty"),
        ("{ui = {float_width = 0}}", "ai_host: `ui.float_width` should be a positive number, not 0"),
        ("{ui = {float_height = -1}}", "ai_host: `ui.float_height` should be a positive number, not -1"),
        ("{ui = {frame_ms = 0}}", "ai_host: `ui.frame_ms` should be a positive number, not 0"),
        ("{ui = {border = 1}}", "ai_host: `ui.border` should be string or table, not number"),
        ("{prompts = {explain_user = {}}}", "ai_host: `prompts.explain_user` should be string, not table"),
        ("{keymaps = {explain = false}}", "ai_host: `keymaps.explain` should be string, not boolean"),
        (
            "{log = {level = 'loud'}}",
            "ai_host: `log.level` should be one of 'debug', 'info', 'warning', 'error', not 'loud'",
        ),
        ("{log = {file = 0}}", "ai_host: `log.file` should be string, not number"),
        ("{completion = {enabled = 1}}", "ai_host: `completion.enabled` should be boolean, not number"),
        ("{completion = {debounce_ms = -1}}", "ai_host: `completion.debounce_ms` should be 0 or more, not -1"),
        (
            "{completion = {context_chars = 0}}",
            "ai_host: `completion.context_chars` should be a positive number, not 0",
        ),
        (
            "{completion = {prefix_ratio = 1.5}}",
            "ai_host: `completion.prefix_ratio` should be between 0 and 1, not 1.5",
        ),
        ("{completion = {max_lines = 0}}", "ai_host: `completion.max_lines` should be a positive number, not 0"),
        ("{completion = {num_predict = 0}}", "ai_host: `completion.num_predict` should be a positive number, not 0"),
        ("{completion = {num_ctx = 0}}", "ai_host: `completion.num_ctx` should be a positive number, not 0"),
        ("{completion = {temperature = '0'}}", "ai_host: `completion.temperature` should be number, not string"),
        ("{completion = {keep_alive = 1}}", "ai_host: `completion.keep_alive` should be string, not number"),
        (
            "{completion = {max_file_bytes = 0}}",
            "ai_host: `completion.max_file_bytes` should be a positive number, not 0",
        ),
        (
            "{completion = {hide_with_menu = 'no'}}",
            "ai_host: `completion.hide_with_menu` should be boolean, not string",
        ),
        (
            "{completion = {fim_template = 'gpt'}}",
            "ai_host: `completion.fim_template` should be one of '', 'qwen', 'codellama', 'deepseek', 'starcoder', 'codegemma', not 'gpt'",
        ),
        (
            "{completion = {disabled_filetypes = 'help'}}",
            "ai_host: `completion.disabled_filetypes` should be table, not string",
        ),
        (
            "{completion = {disabled_filetypes = {a = 1}}}",
            "ai_host: `completion.disabled_filetypes` should be a list of filetypes",
        ),
        (
            "{completion = {disabled_filetypes = {'help', 3}}}",
            "ai_host: `completion.disabled_filetypes` [2] should be string, not number",
        ),
        ("{keymaps = {accept = 1}}", "ai_host: `keymaps.accept` should be string, not number"),
        ("{keymaps = {accept_word = 1}}", "ai_host: `keymaps.accept_word` should be string, not number"),
        ("{keymaps = {accept_line = 1}}", "ai_host: `keymaps.accept_line` should be string, not number"),
        ("{keymaps = {dismiss = 1}}", "ai_host: `keymaps.dismiss` should be string, not number"),
        ("{keymaps = {toggle = 1}}", "ai_host: `keymaps.toggle` should be string, not number"),
        ("{keymaps = {next = 1}}", "ai_host: `keymaps.next` should be string, not number"),
        ("{keymaps = {prev = 1}}", "ai_host: `keymaps.prev` should be string, not number"),
        ("{completion = {prefetch = 1}}", "ai_host: `completion.prefetch` should be boolean, not number"),
        ("{keymaps = {models = 1}}", "ai_host: `keymaps.models` should be string, not number"),
        ("{keymaps = {status = 1}}", "ai_host: `keymaps.status` should be string, not number"),
        ("{keymaps = {cancel_all = 1}}", "ai_host: `keymaps.cancel_all` should be string, not number"),
        ("{scheduler = {concurrency = 0}}", "ai_host: `scheduler.concurrency` should be a positive number, not 0"),
        ("{scheduler = {queue_limit = 0}}", "ai_host: `scheduler.queue_limit` should be a positive number, not 0"),
        (
            "{scheduler = {completion_rate_per_s = -1}}",
            "ai_host: `scheduler.completion_rate_per_s` should be 0 or more, not -1",
        ),
        (
            "{scheduler = {interactive_rate_per_s = -1}}",
            "ai_host: `scheduler.interactive_rate_per_s` should be 0 or more, not -1",
        ),
        (
            "{scheduler = {completion_deadline_ms = 0}}",
            "ai_host: `scheduler.completion_deadline_ms` should be a positive number, not 0",
        ),
        (
            "{scheduler = {interactive_deadline_ms = 0}}",
            "ai_host: `scheduler.interactive_deadline_ms` should be a positive number, not 0",
        ),
        ("{lsp = {busy_above = -1}}", "ai_host: `lsp.busy_above` should be 0 or more, not -1"),
        ("{lsp = {completion_wait_ms = -1}}", "ai_host: `lsp.completion_wait_ms` should be 0 or more, not -1"),
        ("{lsp = {interactive_wait_ms = -1}}", "ai_host: `lsp.interactive_wait_ms` should be 0 or more, not -1"),
        ("{gpu = {enabled = 'yes'}}", "ai_host: `gpu.enabled` should be boolean, not string"),
        ("{gpu = {device = -1}}", "ai_host: `gpu.device` should be 0 or more, not -1"),
        ("{gpu = {threshold = 80}}", "ai_host: `gpu.threshold` should be a fraction above 0 and at most 1, not 80"),
        ("{gpu = {cache_ms = -1}}", "ai_host: `gpu.cache_ms` should be 0 or more, not -1"),
        ("{gpu = {wait_ms = -1}}", "ai_host: `gpu.wait_ms` should be 0 or more, not -1"),
        ("{gpu = {on_busy = 'explode'}}", "ai_host: `gpu.on_busy` should be one of 'warn', 'stop', not 'explode'"),
        ("{refactor = {context_lines = -1}}", "ai_host: `refactor.context_lines` should be 0 or more, not -1"),
        ("{refactor = {max_chars = 0}}", "ai_host: `refactor.max_chars` should be a positive number, not 0"),
        ("{refactor = {num_ctx = 0}}", "ai_host: `refactor.num_ctx` should be a positive number, not 0"),
        ("{refactor = {num_predict = 0}}", "ai_host: `refactor.num_predict` should be a positive number, not 0"),
        ("{refactor = {temperature = 'x'}}", "ai_host: `refactor.temperature` should be number, not string"),
        ("{refactor = {keep_alive = 1}}", "ai_host: `refactor.keep_alive` should be string, not number"),
        (
            "{refactor = {default_instruction = 1}}",
            "ai_host: `refactor.default_instruction` should be string, not number",
        ),
        ("{refactor = {keys = {accept_all = 1}}}", "ai_host: `refactor.keys.accept_all` should be string, not number"),
        (
            "{refactor = {keys = {yes = 'y'}}}",
            "ai_host: `refactor.keys.yes` is not an option (see :help ai_host-config)",
        ),
        ("{keymaps = {refactor = 1}}", "ai_host: `keymaps.refactor` should be string, not number"),
        ("{keymaps = {generate = 1}}", "ai_host: `keymaps.generate` should be string, not number"),
        ("{prompts = {refactor_user = 1}}", "ai_host: `prompts.refactor_user` should be string, not number"),
        ("{security = {redact = 'no'}}", "ai_host: `security.redact` should be boolean, not string"),
        ("{security = {deny = '.env'}}", "ai_host: `security.deny` should be table, not string"),
        ("{security = {deny = {1}}}", "ai_host: `security.deny` [1] should be string, not number"),
        ("{scheduler = {avoid_model_swap = 1}}", "ai_host: `scheduler.avoid_model_swap` should be boolean, not number"),
        ("{fallbacks = {explain = 'x'}}", "ai_host: `fallbacks.explain` should be table, not string"),
        ("{fallbacks = {completion = {1}}}", "ai_host: `fallbacks.completion` [1] should be string, not number"),
        ("{fallbacks = {refactor = {a = 'b'}}}", "ai_host: `fallbacks.refactor` should be a list of model names"),
        ("{fallbacks = {dance = {}}}", "ai_host: `fallbacks.dance` is not an option (see :help ai_host-config)"),
        ("{endpoints = {{}}}", "ai_host: `endpoints` [1].url should be an http(s) URL such as http://gpu-server:11434"),
        ("{endpoints = {'x'}}", "ai_host: `endpoints` [1] should be table, not string"),
        ("{endpoints = {{url = 'http://h:1', port = 1}}}", "ai_host: `endpoints` [1].port is not an option"),
        (
            "{endpoints = {{url = 'http://h:1', kind = 'vllm'}}}",
            "ai_host: `endpoints` [1].kind should be one of 'ollama', 'openai', not 'vllm'",
        ),
        (
            "{endpoints = {{url = 'http://h:1', tasks = {'dance'}}}}",
            "ai_host: `endpoints` [1].tasks should name tasks among 'explain', 'completion', 'refactor', 'review', 'chat', 'doc', not 'dance'",
        ),
        (
            "{endpoints = {{url = 'http://h:1', allow_remote = 'yes'}}}",
            "ai_host: `endpoints` [1].allow_remote should be boolean, not string",
        ),
    ],
)
def test_every_mistake_gets_a_dotted_path_message(nvim, opts, message):
    assert setup_error(nvim, opts) == message


# The engine (ai_host/config.py) checks the same schema: the same options, the same sentence.
# (security.pins alone is worded `security.pins['m']` there, `security.pins` ['m'] here.)
@pytest.mark.parametrize(
    "opts",
    [
        {"nope": 1},
        {"explain": {"nope": 1}},
        {"explain": 3},
        {"explain": {"context_lines": "3"}},
        {"explain": {"context_lines": -1}},
        {"explain": {"max_chars": 0}},
        {"explain": {"num_ctx": 1.5}},
        {"completion": {"prefix_ratio": 1.5}},
        {"gpu": {"threshold": 80}},
        {"backend": {"kind": "vllm"}},
        {"backend": {"allow_remote": "yes"}},
        {"models": {"review": ""}},
        {"ui": {"border": 1}},
        {"completion": {"disabled_filetypes": "help"}},
        {"completion": {"disabled_filetypes": {"a": 1}}},
        {"security": {"deny": ["x", 2]}},
        {"fallbacks": {"dance": []}},
        {"endpoints": ["x"]},
        {"endpoints": [{}]},
        {"endpoints": [{"url": "http://h:1", "port": 1}]},
        {"endpoints": [{"url": "http://h:1", "kind": "vllm"}]},
        {"endpoints": [{"url": "http://h:1", "tasks": ["dance"]}]},
        {"review": {"max_inline": -1}},
        {"review": {"min_severity": "nit"}},
        {"scheduler": {"avoid_model_swap": 1}},
    ],
)
def test_lua_and_the_engine_refuse_alike(nvim, opts):
    lua = nvim.exec_lua(
        "local ok, err = pcall(require('ai_host').setup, vim.json.decode(...)); return ok and '' or err",
        json.dumps(opts),
    )
    with pytest.raises(ConfigError) as e:
        config.merge(opts)
    assert lua == e.value.user_message()


def test_lua_and_the_engine_have_the_same_defaults_and_tasks(nvim):
    assert nvim.exec_lua("return require('ai_host.config').defaults()") == config.defaults()
    assert nvim.exec_lua("return require('ai_host.config').tasks()") == config.tasks()


def test_the_review_options_are_taken(nvim):
    assert (
        setup_error(
            nvim,
            "{models = {review = 'm'}, fallbacks = {review = {'n'}}, "
            "review = {max_inline = 0, min_severity = 'major', keep_alive = '1m'}, "
            "endpoints = {{url = 'http://h:1', tasks = {'review'}}}}",
        )
        == ""
    )
    cfg = nvim.exec_lua("return require('ai_host').get_config()")
    assert cfg["models"]["review"] == "m" and cfg["review"]["max_inline"] == 0
    assert cfg["review"]["min_severity"] == "major" and cfg["review"]["num_ctx"] == 8192


def test_valid_options_are_merged_over_the_defaults(nvim):
    assert setup_error(nvim, "{models = {explain = 'llama3.2'}, ui = {border = 'single'}}") == ""
    cfg = nvim.exec_lua("return require('ai_host').get_config()")
    assert cfg["models"]["explain"] == "llama3.2" and cfg["models"]["completion"] == "qwen2.5-coder:7b"
    assert cfg["ui"]["border"] == "single" and cfg["timeouts"]["first_byte_ms"] == 120000


def test_a_bad_setup_keeps_the_previous_config(nvim):
    setup_error(nvim, "{models = {explain = 'good'}}")
    assert setup_error(nvim, "{models = {explain = 1}}") != ""
    assert nvim.exec_lua("return require('ai_host').get_config().models.explain") == "good"


def test_default_keymap_has_a_description_and_user_maps_are_kept(nvim):
    m = nvim.exec_lua("return vim.fn.maparg('<leader>ae', 'n', false, true)")
    assert m["desc"] == "AI: explain code" and m["rhs"] == "<Plug>(ai-host-explain)"
    nvim.command("nnoremap <leader>ae :echo 'mine'<CR>")
    setup_error(nvim, "{}")
    assert nvim.exec_lua("return vim.fn.maparg('<leader>ae', 'n')") == ":echo 'mine'<CR>"


def test_an_empty_key_disables_the_default_map(nvim):
    nvim.command("nunmap <leader>ae")
    nvim.command("xunmap <leader>ae")
    setup_error(nvim, "{keymaps = {explain = ''}}")
    assert nvim.exec_lua("return vim.fn.maparg('<leader>ae', 'n')") == ""


def test_a_second_setup_takes_away_the_maps_it_no_longer_makes(nvim):
    nvim.command("inoremap <C-y> <C-r>=1+1<CR>")  # the user's own, before ours
    setup_error(nvim, "{keymaps = {accept = '<C-y>'}}")
    assert nvim.exec_lua("return vim.fn.maparg('<C-y>', 'i', false, true).desc") == "AI: accept suggestion"
    setup_error(nvim, "{keymaps = {accept = '<C-l>', explain = '', status = '<leader>aS'}}")
    assert nvim.exec_lua("return vim.fn.maparg('<C-l>', 'i', false, true).desc") == "AI: accept suggestion"
    assert nvim.exec_lua("return vim.fn.maparg('<C-y>', 'i')") == "<C-R>=1+1<CR>"  # the user's map is back
    tab = nvim.exec_lua("return vim.fn.maparg('<Tab>', 'i', false, true).desc or ''")  # the default accept went
    assert not tab.startswith("AI: ")  # with the first setup: <Tab> is what it was before (Neovim's own)
    for mode in ("n", "x"):
        assert nvim.exec_lua(f"return vim.fn.maparg('<leader>ae', '{mode}')") == ""  # turned off: gone
    assert nvim.exec_lua("return vim.fn.maparg('<leader>as', 'n')") == ""  # moved: the old key is free
    assert nvim.exec_lua("return vim.fn.maparg('<leader>aS', 'n')") == "<Plug>(ai-host-status)"


def test_one_command_with_subcommands_and_completion(nvim):
    assert nvim.call("getcompletion", "AI st", "cmdline") == ["status"]
    assert "explain" in nvim.call("getcompletion", "AI ", "cmdline")
    nvim.command("AI toggle")
    wait_until(lambda: "ghost text off" in nvim.command_output("messages"))
    nvim.command("AI bogus")
    wait_until(
        lambda: (
            'ai_host: unknown subcommand "bogus"; use one of: cancel, chat, doc, explain, fix, generate'
            in nvim.command_output("messages")
        )
    )
