"""The rule families added for issue #14 item 4 (trufflehog's and gitleaks' corpora): a made-up
credential of each shape is redacted; its lookalikes (digests, UUIDs, base64 test vectors, names
made of words, ids) are not."""

import base64
import hashlib
import uuid

import pytest

from ai_host.security import Redactor

# (text, secret, whether the secret alone is recognisable too); every credential is made up.
FAMILIES = {
    "header-pair": ('req.Header.Set("X-Api-Key", "Zq8XkR2mB7vLw4Tn9YcJ")', "Zq8XkR2mB7vLw4Tn9YcJ", False),
    "dash-listing": ("plaid secret - '6e611cb89c263457b5e028d66c16c4'", "6e611cb89c263457b5e028d66c16c4", False),
    "xml-password": ("<password>hunter2-but-longer</password>", "hunter2-but-longer", False),
    "xml-jenkins": (
        "  <secret>{AQAAABAAAAAQx7Vb3Nw8Rz4Tc1Ym6Hd5Jp0Ga}</secret>",
        "{AQAAABAAAAAQx7Vb3Nw8Rz4Tc1Ym6Hd5Jp0Ga}",
        False,
    ),
    "hex-under-key-name": (
        'AZURE_OPENAI_KEY = "57d2de35873840b5ad59d742e90e974e"',
        "57d2de35873840b5ad59d742e90e974e",
        False,
    ),
    "docker-auth": (
        '{"auths": {"r.example.org": {"auth": "ZGVwbG95OmwwbmdQYXNzd29yZA=="}}}',
        "ZGVwbG95OmwwbmdQYXNzd29yZA==",
        False,
    ),
    "named-lowercase-key": (
        "[DEBUG] Using Key=wdvnousa87acfxp9ioasrea4tbeasrfa",
        "wdvnousa87acfxp9ioasrea4tbeasrfa",
        False,
    ),
    "session-token": (
        "  session: aSqfp/GTZbJP+tXPNCZ9GoveoM0vgxtlYXdzPQ2uYNMPPgUkt0VT7SoTLasAo7iVqWWRE",
        "aSqfp/GTZbJP+tXPNCZ9GoveoM0vgxtlYXdzPQ2uYNMPPgUkt0VT7SoTLasAo7iVqWWRE",
        False,
    ),
    "vault-secret-id": (
        "secret_id = '87654321-4321-4321-4321-CBA987654321'",
        "87654321-4321-4321-4321-CBA987654321",
        False,
    ),
    "prefixed-hex": ("token spu-3f10194ca38240ddb880bab79492384b", "spu-3f10194ca38240ddb880bab79492384b", True),
    "vault-token": ("X-Vault-Token=hvs.CAESIL37MuN9DnoD8RIri7rEi1TnNI2D", "hvs.CAESIL37MuN9DnoD8RIri7rEi1TnNI2D", True),
    "bitbucket-dc": (
        "BBDC-MTk4MDE0MzAyMDIzOvvPlDf5edYvDgggvyzpmiXkF0A",
        "BBDC-MTk4MDE0MzAyMDIzOvvPlDf5edYvDgggvyzpmiXkF0A",
        True,
    ),
    "shippo-placeholder": (
        "shippo_live_1111111111111111111111111111111111111111",
        "shippo_live_1111111111111111111111111111111111111111",
        True,
    ),
    "mailchimp": ("mc = '781027e70f066dca90282590510ab5ff-us20'", "781027e70f066dca90282590510ab5ff-us20", True),
    "mailgun": (
        "a2808496167e472756ec338a05a44ee9-0a1b2c3d-4e5f6a7b",
        "a2808496167e472756ec338a05a44ee9-0a1b2c3d-4e5f6a7b",
        True,
    ),
    "twitter-bearer": (
        "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4XsNiRVBChTYbJcE3F",
        "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4XsNiRVBChTYbJcE3F",
        True,
    ),
    "doppler": (
        "dp.pt.v6bpwp4eewbp0jg60xtmjpny5ebwsh39xmwq39jtbbe",
        "dp.pt.v6bpwp4eewbp0jg60xtmjpny5ebwsh39xmwq39jtbbe",
        True,
    ),
    "1password": ("A3-P9WV71-ACTRKT-MH6OY-2HYH2-8PD8N-M8FIX", "A3-P9WV71-ACTRKT-MH6OY-2HYH2-8PD8N-M8FIX", True),
    "databricks": ("dapi47ed1ab6a06d4fbef0525b4c2256d03b", "dapi47ed1ab6a06d4fbef0525b4c2256d03b", True),
    "sendgrid": (
        "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",
        "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",
        True,
    ),
    "discord-bot": (
        "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs",
        "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs",
        True,
    ),
    "jwt-two-parts": (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0",
        True,
    ),
    "random-mixed": ('func token() string { return "ntJD0ER8QpuT0O1WqsclApO2" }', "ntJD0ER8QpuT0O1WqsclApO2", True),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_new_family_is_redacted(name):
    text, secret, bare = FAMILIES[name]
    r = Redactor()
    out = r.redact(f"x = 1\n{text}\ny = 2")
    assert secret not in out and "<redacted:" in out
    assert r.restore(out) == f"x = 1\n{text}\ny = 2"
    if bare:
        assert secret not in Redactor().redact(secret)


def test_a_secret_found_once_is_redacted_wherever_else_it_stands():
    text = "token = 'x7QkR2mB9vLw4Tn1YcJp'\nheaders = {'X-Key': 'x7QkR2mB9vLw4Tn1YcJp'}"
    r = Redactor()
    out = r.redact(text)
    assert out.count("<redacted:password:1>") == 2
    assert r.restore(out) == text
    text = 'db_password = "hunter2-but-longer"\nname = "hunter2-but-longer_v2"'  # a longer word: another string
    assert Redactor().redact(text).endswith('name = "hunter2-but-longer_v2"')


def test_a_plain_word_secret_is_not_blanked_everywhere():
    text = "  POSTGRES_PASSWORD: postgres\n  image: postgres:13"
    out = Redactor().redact(text)
    assert out.endswith("image: postgres:13") and "POSTGRES_PASSWORD: <redacted:" in out


LOOKALIKES = [
    *(
        f"{h}"
        for h in (hashlib.md5(b"x").hexdigest(), hashlib.sha1(b"x").hexdigest(), hashlib.sha256(b"x").hexdigest())
    ),
    f"digest = '{hashlib.md5(b'y').hexdigest()}'",
    f'expected = "{hashlib.sha256(b"y").hexdigest()}"',
    f"checksum: {hashlib.sha1(b'y').hexdigest()}",
    str(uuid.UUID(int=7, version=4)),
    f"request_id = '{uuid.UUID(int=8, version=4)}'",
    base64.b64encode(b"The quick brown fox jumps over the lazy dog").decode(),
    f"vector = '{base64.b64encode(b'Lorem ipsum dolor sit amet, consectetur').decode()}'",
    "sha256-" + hashlib.sha256(b"z").hexdigest(),  # an integrity string, a digest with its algorithm
    "commit_" + hashlib.sha1(b"z").hexdigest(),
    'boundary="b1_76a486bee62b0d200f33dc2ca08220ad"',  # a MIME boundary
    "class RawDescriptionHelpFormatter(HelpFormatter):",
    "    PyObject_GC_IsFinalized = _PyObject_GC_IsFinalized",
    "        self.assertEqual(cm.exception.errno, ssl.SSL_ERROR_WANT_READ)",
    "            with ctx.wrap_socket(c, False, do_handshake_on_connect=False) as c:",
    "SENSITIVE = ('password', 'secret', 'token')",
    'req.add_header("Proxy-Authorization", "FooBar")',
    "    password = 'xxxxxxxxxxxx'",
    "    token = '************'",
    "items.sort(key=lambda kv: kv[1])",
    "signal.signal(signal.SIGINT, handler)",
    "__all__ = ('Context', 'ContextVar', 'Token', 'copy_context')",
]


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_are_left_alone(text):
    assert Redactor().redact(text) == text
