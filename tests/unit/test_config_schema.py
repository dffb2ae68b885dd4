"""ai_host/config_schema.json: well formed, the source of the generated files (which must be current),
and the rules config.merge() enforces (the same sentences as Lua's setup(); tests/nvim/test_config.py
checks both sides agree)."""

from __future__ import annotations

import json

import pytest

from ai_host import cli, config
from ai_host.errors import ConfigError
from scripts import gen_config_docs

TYPES = {"boolean", "integer", "number", "string", "enum", "list", "map", "string_or_list", "endpoints"}
LEAF_FIELDS = {
    "type",
    "default",
    "doc",
    "help",
    "choices",
    "of",
    "nonempty",
    "digest",
    "above",
    "below",
    "min",
    "max",
    "example",
    "default_doc",
    "fields",
    "class",
}


def error(user: object) -> str:
    with pytest.raises(ConfigError) as e:
        config.merge(user)  # type: ignore[arg-type]
    return e.value.user_message()


# -- the generated files -------------------------------------------------------------------------


def test_the_generated_files_are_current():
    """Fails when the schema changed and `python scripts/gen_config_docs.py` was not run."""
    stale = [
        str(p.relative_to(gen_config_docs.ROOT))
        for p, text in gen_config_docs.outputs().items()
        if p.read_text(encoding="utf-8") != text
    ]
    assert stale == [], f"run `python scripts/gen_config_docs.py`: {stale} are stale"


def test_check_mode_fails_on_a_stale_file_and_says_what_to_run(tmp_path, monkeypatch, capsys):
    types = tmp_path / "types.lua"
    types.write_text("---@class ai_host.Config\n")
    monkeypatch.setattr(gen_config_docs, "TYPES", types)
    monkeypatch.setattr(gen_config_docs, "ROOT", tmp_path.parent)
    assert gen_config_docs.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ai_host: ") and "types.lua is stale; run `python scripts/gen_config_docs.py`" in err
    assert gen_config_docs.main([]) == 0 and gen_config_docs.main(["--check"]) == 0
    assert "---@field avoid_model_swap boolean" in types.read_text()


def test_the_annotations_and_the_help_name_every_option():
    types = gen_config_docs.TYPES.read_text()
    help_text = gen_config_docs.HELP.read_text()
    for path, spec in config.leaves():
        key = path.rsplit(".", 1)[-1]
        assert f"---@field {key} " in types and spec["doc"] in types, path
        assert f"*ai_host-{path}*" in help_text, path
    assert "---@field avoid_model_swap boolean" in types  # it had drifted out of the hand-written ones


# -- the schema itself ---------------------------------------------------------------------------


def test_every_option_has_a_known_type_a_one_line_doc_and_a_valid_default():
    for path, spec in config.leaves():
        assert spec["type"] in TYPES, path
        assert set(spec) <= LEAF_FIELDS, (path, set(spec) - LEAF_FIELDS)
        assert spec["doc"] and "\n" not in spec["doc"] and len(spec["doc"]) <= 160, path
        if spec["type"] == "enum":
            assert spec["default"] in spec["choices"], path
    assert config.merge(config.defaults()) == config.defaults()  # the defaults pass their own rules


def test_the_task_list_is_the_schema_s():
    tasks = config.tasks()
    assert tasks == ["explain", "completion", "refactor", "review", "chat", "doc"]
    cfg = config.defaults()
    assert list(cfg["models"]) == tasks and list(cfg["fallbacks"]) == tasks


def test_the_review_options():
    cfg = config.defaults()
    assert cfg["models"]["review"] == cfg["models"]["explain"]
    assert cfg["review"] == {
        "num_ctx": 8192,
        "num_predict": 768,
        "temperature": 0.1,
        "keep_alive": "5m",
        "max_inline": 10,
        "min_severity": "minor",
    }
    assert config.merge({"review": {"max_inline": 0, "min_severity": "blocker"}})["review"]["max_inline"] == 0
    assert error({"review": {"max_inline": -1}}) == "ai_host: `review.max_inline` should be 0 or more, not -1"
    assert (
        error({"review": {"min_severity": "nit"}})
        == "ai_host: `review.min_severity` should be one of 'blocker', 'major', 'minor', 'info', not 'nit'"
    )


def test_the_schema_file_is_what_config_reads():
    schema = json.loads((gen_config_docs.SCHEMA).read_text())
    assert schema == config.schema() and schema["version"] == 1


# -- merge(): one test per kind of mistake -------------------------------------------------------


@pytest.mark.parametrize(
    "user, message",
    [
        ("x", "setup() options should be a table, not string"),
        ({"nope": 1}, "`nope` is not an option (see :help ai_host-config)"),
        ({"explain": {"nope": 1}}, "`explain.nope` is not an option (see :help ai_host-config)"),
        ({"explain": 3}, "`explain` should be table, not number"),
        ({"explain": {"temperature": "hot"}}, "`explain.temperature` should be number, not string"),
        ({"backend": {"allow_remote": "yes"}}, "`backend.allow_remote` should be boolean, not string"),
        ({"log": {"file": None}}, "`log.file` should be string, not nil"),
        ({"explain": {"num_ctx": 1.5}}, "`explain.num_ctx` should be a whole number, not 1.5"),
        ({"explain": {"max_chars": 0}}, "`explain.max_chars` should be a positive number, not 0"),
        ({"explain": {"context_lines": -1}}, "`explain.context_lines` should be 0 or more, not -1"),
        ({"completion": {"prefix_ratio": 1.5}}, "`completion.prefix_ratio` should be between 0 and 1, not 1.5"),
        ({"gpu": {"threshold": 80}}, "`gpu.threshold` should be a fraction above 0 and at most 1, not 80"),
        ({"backend": {"kind": "vllm"}}, "`backend.kind` should be one of 'ollama', 'openai', not 'vllm'"),
        ({"models": {"explain": ""}}, "`models.explain` should not be empty"),
        ({"completion": {"disabled_filetypes": "help"}}, "`completion.disabled_filetypes` should be table, not string"),
        (
            {"completion": {"disabled_filetypes": {"a": 1}}},
            "`completion.disabled_filetypes` should be a list of filetypes",
        ),
        ({"security": {"deny": [1]}}, "`security.deny` [1] should be string, not number"),
        ({"security": {"pins": {"m": 12}}}, "`security.pins['m']` should be string, not number"),
        (
            {"security": {"pins": {"m": "xyz"}}},
            "`security.pins['m']` should be the model's digest from `ollama list` (12 to 64 hex digits), not 'xyz'",
        ),
        ({"security": {"pins": ["abababababab"]}}, "`security.pins` should be keyed by model name, not 1"),
        ({"ui": {"border": 1}}, "`ui.border` should be string or table, not number"),
        ({"endpoints": "x"}, "`endpoints` should be table, not string"),
        ({"endpoints": {"a": 1}}, "`endpoints` should be a list of endpoints"),
        ({"endpoints": ["x"]}, "`endpoints` [1] should be table, not string"),
        ({"endpoints": [{"url": "http://h:1", "port": 1}]}, "`endpoints` [1].port is not an option"),
        (
            {"endpoints": [{"url": "http://h:1", "allow_remote": "yes"}]},
            "`endpoints` [1].allow_remote should be boolean, not string",
        ),
        ({"endpoints": [{}]}, "`endpoints` [1].url should be an http(s) URL such as http://gpu-server:11434"),
        (
            {"endpoints": [{"url": "http://h:1", "kind": "vllm"}]},
            "`endpoints` [1].kind should be one of 'ollama', 'openai', not 'vllm'",
        ),
        (
            {"endpoints": [{"url": "http://h:1", "tasks": ["dance"]}]},
            "`endpoints` [1].tasks should name tasks among 'explain', 'completion', 'refactor', 'review', 'chat', 'doc', not 'dance'",
        ),
    ],
)
def test_every_mistake_gets_the_sentence_setup_gives(user, message):
    assert error(user) == "ai_host: " + message


def test_what_lua_sends_is_taken_as_meant():
    """An empty Lua table arrives as a list; a whole number may arrive as a float."""
    cfg = config.merge(
        {
            "security": {"pins": []},
            "explain": {"num_ctx": 4096.0},
            "refactor": {"keys": []},
            "fallbacks": {"explain": {}},
            "endpoints": {},
        }
    )
    assert cfg["security"]["pins"] == {} and cfg["fallbacks"]["explain"] == [] and cfg["endpoints"] == []
    assert cfg["explain"]["num_ctx"] == 4096 and isinstance(cfg["explain"]["num_ctx"], int)
    assert cfg["refactor"]["keys"] == config.defaults()["refactor"]["keys"]
    assert config.merge({"ui": {"border": ["╭", "─", "╮", "│", "╯", "─", "╰", "│"]}})["ui"]["border"][0] == "╭"
    ok = [{"url": "https://gpu.example.org", "kind": "openai", "tasks": ["review"], "allow_remote": True}]
    assert config.merge({"endpoints": ok})["endpoints"] == ok


def test_merge_never_shares_the_defaults_or_the_users_tables():
    user = {"completion": {"disabled_filetypes": ["help"]}}
    cfg = config.merge(user)
    cfg["completion"]["disabled_filetypes"].append("x")
    assert user["completion"]["disabled_filetypes"] == ["help"]
    assert "x" not in config.defaults()["completion"]["disabled_filetypes"]


def test_the_cli_checks_its_config_through_the_schema(monkeypatch, capsys):
    seen = []

    def refuse(user):
        seen.append(user)
        raise ConfigError("`backend.url` should be string, not number")

    monkeypatch.setattr(config, "merge", refuse)
    assert cli.main(["models"]) == 2
    assert seen and seen[0]["backend"]["kind"] == "ollama"
    assert capsys.readouterr().err.strip() == "ai_host: `backend.url` should be string, not number"


def test_a_task_left_without_a_model_uses_the_model_it_inherits():
    from ai_host.routing import Endpoint, Router

    cfg = config.merge(
        {
            "models": {"explain": "e:1", "refactor": "r:1", "doc": ""},
            "fallbacks": {"explain": ["e:2"], "chat": ["never"]},
        }
    )
    router = Router(
        [Endpoint("default", "ollama", "http://127.0.0.1:11434")],
        cfg["models"],
        cfg["fallbacks"],
        inherits=config.inherits(),
    )
    assert [m for _, m in router.candidates("chat")] == ["e:1", "e:2"]  # explain's model and fallbacks
    assert router.model_of("doc") == "r:1"
    router.set_model("chat", "c:1")  # once set, its own
    assert [m for _, m in router.candidates("chat")] == ["c:1", "never"]
