"""The deny list (gitignore semantics, any letter case, links resolved) and the sniff that refuses a
file of secrets whatever it is called."""

from __future__ import annotations

import base64
import random
import sysconfig
from pathlib import Path

import pytest

from ai_host import config, errors
from ai_host.deny import denied, refusal, sniff

DEFAULTS = config.defaults()["security"]["deny"]


@pytest.mark.parametrize(
    "name",
    [
        ".ENV",
        "deploy/server.PEM",
        "~/.ssh/ID_RSA",
        "config/Secrets.yaml",
        ".Env.Local",
        "kubeconfig",
        "infra/prod.tfvars",
        "~/.docker/config.json",
        ".pgpass",
        "gcp/my-service-account-key.json",
        "~/.git-credentials",
        "release.jks",
        "android/app.keystore",
        "~/.kube/config",
        "/home/u/.NETRC",
    ],
)
def test_the_defaults_deny_these_in_any_letter_case(name):
    assert denied(name, DEFAULTS) is not None


@pytest.mark.parametrize(
    "name",
    [
        "~/src/my-secrets-manager/src/app.py",
        "credentials-service/main.go",
        "src/config.json",
        "docker/config.json.py",
        "x.docker/config.json",
        "src/main.py",
        ".environment.py",
        "keys/README.md",
    ],
)
def test_a_folder_name_never_denies_the_files_in_it(name):
    assert denied(name, DEFAULTS) is None


@pytest.mark.parametrize(
    "pattern, name, matches",
    [
        ("*secret*", "/home/u/src/my-secrets-manager/src/app.py", False),  # no slash: the file's name only
        ("*secret*", "/home/u/src/app/secret_key.py", True),
        (".docker/config.json", "/home/u/.docker/config.json", True),  # a slash: the path, from any folder
        (".docker/config.json", "/home/u/my.docker/config.json", False),
        ("conf/*.ini", "/srv/app/conf/db.ini", True),
        ("conf/*.ini", "/srv/app/conf/sub/db.ini", False),  # `*` never spans a folder
        ("conf/**/*.ini", "/srv/app/conf/a/b/db.ini", True),  # `**` does
        ("**/private/*", "/srv/private/notes.txt", True),
        ("/etc/app/*.conf", "/etc/app/db.conf", True),  # a leading slash: from the root
        ("/etc/app/*.conf", "/srv/etc/app/db.conf", False),
        ("private/", "/srv/private/deep/notes.txt", True),  # a trailing slash: under such a folder
        ("private/", "/srv/private.txt", False),
        ("id_[rd]sa", "/home/u/.ssh/id_dsa", True),
        ("id_[!rd]sa", "/home/u/.ssh/id_rsa", False),
    ],
)
def test_gitignore_semantics(pattern, name, matches):
    assert (denied(name, [pattern]) == pattern) is matches


def test_a_negated_pattern_lets_a_file_through():
    deny = ["*secret*", "!secret_rules.py"]
    assert denied("ai_host/secret_rules.py", deny) is None and denied("ai_host/secrets.yaml", deny) == "*secret*"


def test_a_link_is_denied_by_the_file_it_leads_to(tmp_path):
    (tmp_path / ".env").write_text("API_TOKEN=abc\n")
    (tmp_path / "config.py").symlink_to(".env")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "settings.py").symlink_to("../config.py")  # a chain of links
    assert denied("config.py", DEFAULTS, str(tmp_path / "config.py")) in (".env", "*.env")
    assert denied(str(tmp_path / "src" / "settings.py"), DEFAULTS) in (".env", "*.env")
    (tmp_path / "loop.py").symlink_to("loop.py")  # a loop of links is matched by its name, never raises
    assert denied("loop.py", DEFAULTS, str(tmp_path / "loop.py")) is None


def key_text() -> str:
    body = base64.b64encode(random.Random(3).randbytes(1190)).decode()
    return "\n".join(
        [
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            *(body[i : i + 70] for i in range(0, len(body), 70)),
            "-----END OPENSSH PRIVATE KEY-----",
            "",
        ]
    )


SECRET_FILES = {
    "a dotenv file": "# local settings\nDB_HOST=localhost\nMODE=prod\n\nexport API_URL=https://x.example\n",
    "a private key": key_text(),
    "a kubeconfig": (
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://k8s.example:6443\n"
        "  name: prod\nusers:\n- name: admin\n  user:\n    token: abc\n"
    ),
    "a .netrc file": "machine api.example.com\n  login deploy\n  password hunter2\ndefault login anon password x\n",
    "a Docker credentials file": '{\n  "auths": {\n    "registry.example": {\n      "auth": "ZGVwbG95Omh1bnRlcjI="\n    }\n  }\n}\n',
    "a cloud service-account key": '{\n  "type": "service_account",\n  "project_id": "p",\n  "private_key": "-----BEGIN"\n}\n',
}


@pytest.mark.parametrize("kind", sorted(SECRET_FILES))
def test_a_file_of_secrets_is_known_by_its_text(kind):
    assert sniff(SECRET_FILES[kind]) == kind


def test_a_dotenv_file_with_a_line_being_typed_is_still_one():
    assert sniff("DB_HOST=localhost\nMODE=prod\nFEAT") == "a dotenv file"


@pytest.mark.parametrize(
    "text",
    [
        "import os\n\nMODE=os.environ['MODE']\nDEBUG=False\n\ndef main():\n    run(MODE)\n    log(DEBUG)\n    return 0\n",
        'KEY = """\n' + key_text() + '"""\n',  # a key inside a module: redacted, not refused
        "Use a .netrc file:\n\n    machine example.com login me password secret\n\nand so on, as the docs say.\n",
        "",
    ],
)
def test_code_is_not_a_file_of_secrets(text):
    assert sniff(text) is None


def test_the_standard_library_is_never_taken_for_a_file_of_secrets():
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    flagged = [p.name for p in sorted(stdlib.glob("*.py")) if sniff(p.read_text(errors="replace"))]
    assert flagged == []


def test_a_request_from_a_terminal_or_of_a_secrets_file_is_refused_with_a_sentence():
    terminal = refusal({"filename": "notes.txt", "buftype": "terminal", "code": "x = 1"}, DEFAULTS)
    renamed = refusal({"filename": "notes.txt", "before": "", "code": "DB_HOST=db\nMODE=prod", "after": ""}, DEFAULTS)
    by_name = refusal({"filename": "prod.tfvars", "code": "x = 1"}, DEFAULTS)
    assert isinstance(terminal, errors.DeniedTerminal) and isinstance(renamed, errors.DeniedContent)
    assert by_name is not None and str(by_name) == "*.tfvars"
    for e in (terminal, renamed, by_name):
        assert e.user_message().startswith("ai_host: ") and "nothing was sent" in e.user_message()
    assert refusal({"filename": "app.py", "prefix": "def f():\n    ret", "suffix": "\n"}, DEFAULTS) is None
