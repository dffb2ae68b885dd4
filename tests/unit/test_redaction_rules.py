"""The rule families added for issue #14 item 4 (trufflehog's and gitleaks' corpora): a made-up
credential of each shape is redacted; its lookalikes (digests, UUIDs, base64 test vectors, names
made of words, ids) are not."""

import base64
import hashlib
import random
import uuid

import pytest

from ai_host.security import Redactor

# (text, secret, whether the secret alone is recognisable too); every credential is made up.
# tests/unit/test_security.py redacts each, with its own table.
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


# The second round (bare recall): each rule's secret is redacted on its own and in a line; its near
# miss (same shape, one thing missing) is not. Every value is made up.
BARE = {
    # a token of one case and digits: its bar is that of its 36 symbols, not of 62
    "lowercase-digits": "mli4plqk768epp7o0z79epqu",
    "uppercase-digits": "K8A1AZ12TADEIO4ZN61PZ1M88SEW",
    "lowercase-digits-few-changes": "ujxs1kktljev8g7oijfynoykedznskiheijt",
    # base64: with `+` or `/`, with its padding, url-safe with its padding
    "base64-40": "5WVaOVQMQT948pt2h91AoliUjoLFrvIuzPhqmO/y",
    "base64-padded": "0iVmfCRu+nWIxDqSaBaDH792kkrhDTuC+xL9Pc7tW3Y=",
    "base64-no-sign-padded": "T5LJHzWwZzdpmNtxKDaDcDUlckU=",
    "urlsafe-padded": "Xq8ZkR2mB7vLw4Tn9YcJ1pHs6DfG3aEu0oKi-x4T2=",
    # base64 of `user:password`, of a key with its kind in front
    "base64-credentials": "ZGVwbG95OkRCN1hQZDJkWlRpc0NVYlkxUnh5",
    "base64-prefixed-key": "cHJpdmF0ZV84cVJEdjFRZ00wbEtBeVl6WWRuMg==",
    # a random token after a dot (an old Vault token, a dotted provider token)
    "vault-service-token": "s.P7poamuwQKndJk4U2YGXM2ST",
    "after-a-dot": "xyz.Ry4mv3F3SIa2jAeBaszZDuD5D2SvW9",
    # a licence key: groups of capitals and digits
    "licence-groups": "GEI04LY-2IRWA2T-PUIRV0T-YI3CWZQ",
    # providers
    "azure-client-secret": "k078Q~THK.tiIPT~ppRpo.mNDBjRL~OXeiQtmhkJ",
    "der-rsa-key-line": "MIIEpQIBAAKCAQEAfp7Kqu70+84QSN7VD4a7joGQGIeNmqW2xXO6jlRiM+1XGXAO",
    "jwt-any-payload": "eyJhbGciOiJIUzI1NiJ9.WoeOlsuMAHGE9Hngi6Gezpq8UPktsn3NKi3YqHh7",
    "airtable-oauth": "oaawkMz0OmdOpEQUj.v1.eyJ1c2VySWQiOiJ1c3JYazltUTJ2TDhwUjQiLCJleHBpcmVzQXQiOiIyMDI2In0",
    "entra-refresh": "1.A4WMYR9IehS87jCenlkXOajNSDo1HD7NlWpopgVHkaRZS.AgjoumQQFQzcmPexqFUs-TViMrm-7HAe",
    "newrelic-license": "67e6e76f770d5f969dd80ffd5fcfde8cFFFFNRAL",
    "newrelic-mobile": "AAfd65699c5acd52df979e91ee81f577b1665629e2-NRMA",
    "slack-webhook-no-scheme": "hooks.slack.com/services/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",
    "typeform": "tfp_k3m9x-pqrstv=w7ab2c9d4=ehjkmn5qz0rs1t",
    "sourcegraph": "sgp_aeB07B4a3bbC45591BDf3336FD0776e56A9bd6EE",
    "adobe": "p8e-5c3f2bf5915057e234dd9f3d90742cf9",
    "fly-macaroon": "fm2_lJPECAAAAAAAAkQ9xRm7vT2pLw/Zs8Hn+Yc4Ud1Ke6Bj5Ga3Wf0Xi",
    "easypost": "EZAK0000111122223333444455556666",  # (whatever the body)
    "alibaba": "LTAI00001111222233334444",
    "bitbucket-app-password": "ATBB0000111122223333444455556666aaaa",
    "bedrock": "ABSKQmVkcm9ja0FQSUtleS0000000000000000",
    "prefix-then-equals": "pgak_k3m9x7pq2vz8w=aaaaaaaaaaaaaaaa",
    "prefix-then-base64": "glc_eyJr+Zq8XkR2mB7v/Lw4Tn9YcJ1pHs6DfG3a",
}

NEAR_MISSES = {
    "lowercase-digits": "x1y2x1y2x3y4x1y2x3y4x5y6",  # one case and digits, but few symbols: a pattern
    "uppercase-digits": "R32G32B32A32_TYPELESS",  # a format's name
    "lowercase-digits-few-changes": "abcdefghijklmnopqrstuvwxyz0123456789",  # the alphabet
    "base64-40": "src/main/java/com/example/app/Settings",  # a path of words
    "base64-padded": base64.b64encode(bytes(range(24)) + bytes(12)).decode(),  # data: zero bytes
    "base64-no-sign-padded": base64.b64encode("Falinaptár házhozszállítás".encode("latin-1")).decode(),  # 8-bit text
    "urlsafe-padded": base64.urlsafe_b64encode(b"hello world, this is text").decode(),
    "base64-credentials": base64.b64encode(b"user:password").decode(),  # a placeholder password
    "base64-prefixed-key": base64.b64encode(b"private_key_file_name").decode(),  # words
    "vault-service-token": "s.assertRaisesRegexWithTheMessage",  # an attribute made of words
    "after-a-dot": "self.test_encode_decode_roundtrip_utf8",
    "licence-groups": "ABCDEFG-HIJKLMN-OPQRSTU-VWXYZ01",  # the alphabet in groups
    "azure-client-secret": "version~Q~draft",  # no digit before `Q~`, too short
    "der-rsa-key-line": "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx+tAzHtf3wrK1raD4l0b",  # a public key's line
    "jwt-any-payload": "eyJhbGciOiJIUzI1NiJ9",  # a JWT header alone: base64 of JSON
    "airtable-oauth": "oaawkMz0OmdOpEQUj.v2",
    "entra-refresh": "v1.AboutTheConfigurationOfTheSchedulerModuleX.Agenda_for_the_weekly_meeting",
    "newrelic-license": "67e6e76f770d5f969dd80ffd5fcfde8c",  # hex alone: a digest
    "newrelic-mobile": "AAfd65699c5acd52df979e91ee81f577b1665629e2",
    "slack-webhook-no-scheme": "hooks.slack.com/apps/new",
    "typeform": "tfp_default_settings_value",  # an identifier: no digit, no capital
    "sourcegraph": "sgp_header",
    "adobe": "p8e-short",
    "fly-macaroon": "fm2_scale",
    "easypost": "EZAKshort1",
    "alibaba": "LTAI2",
    "bitbucket-app-password": "ATBB",
    "bedrock": "ABSKshort",
    "prefix-then-equals": "pgak_aaaaaaaaaaaaa=aaaaaaaaaaaaaaaa",  # one letter: a placeholder
    "prefix-then-base64": "glc_eyJr+Zq8X/kR2m",  # too short
}


@pytest.mark.parametrize("name", sorted(BARE))
def test_each_bare_secret_is_redacted_alone_and_in_a_line(name):
    secret = BARE[name]
    assert secret not in Redactor().redact(secret)
    text = f"x = 1\nvalue = '{secret}'\ny = 2"
    r = Redactor()
    out = r.redact(text)
    assert secret not in out and r.restore(out) == text


@pytest.mark.parametrize("name", sorted(NEAR_MISSES))
def test_each_near_miss_is_left_alone(name):
    text = NEAR_MISSES[name]
    assert Redactor().redact(text) == text
    assert Redactor().redact(f"x = '{text}'") == f"x = '{text}'"


def test_a_password_in_a_url_query_or_a_connection_string_is_redacted():
    for text in (
        "jdbc:postgresql://db:5432/app?sslmode=disable&password=testpassword&user=app",
        "Server=db;Database=app;User Id=app;Password=hunter2pass;",
    ):
        assert "<redacted:" in Redactor().redact(text)
    assert Redactor().redact("    password = testpassword") == "    password = testpassword"  # a variable


def test_the_word_for_a_secret_is_no_secret():
    for text in (
        'password = "password"',
        "secret: secret",
        "TOKEN=token",
        "http://user:password@localhost:8080/",
        "machine example.org login user password pass",
    ):
        assert Redactor().redact(text) == text
    assert "<redacted:" in Redactor().redact('password = "passw0rd"')


def test_wrapped_base64_of_a_file_or_text_is_no_key_body():
    gzip_blob = base64.encodebytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 2).decode()
    text_blob = base64.encodebytes(("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 6).encode()).decode()
    for blob in (gzip_blob, text_blob):
        text = f"DATA = '''\n{blob}'''"
        assert Redactor().redact(text) == text
    key = base64.encodebytes(random.Random(3).randbytes(180)).decode()
    assert "<redacted:private-key" in Redactor().redact(f"KEY = '''\n{key}'''")


def test_the_alphabet_is_no_random_token():
    assert Redactor().redact("SAMPLE = 'AaBbCcDdEeFfGgHhIiJj'") == "SAMPLE = 'AaBbCcDdEeFfGgHhIiJj'"
