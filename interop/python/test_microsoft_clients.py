"""Microsoft's own clients against `pbi-embed emulator --tls`.

MSAL for Python and azure-identity sign in to the emulator over HTTPS, trusting only the
CA it writes (REQUESTS_CA_BUNDLE), with the authority host changed and nothing else; then
Microsoft's "embed for your customers" sample pattern (MSAL acquire_token_for_client,
GET the report, POST the multi-resource GenerateToken) mints an embed token. Each test
checks what reached the emulator through its control routes.

    python3 -m venv .venv && .venv/bin/pip install -r interop/python/requirements.txt
    cargo build -p pbi-embed-cli
    .venv/bin/python -m unittest interop/python/test_microsoft_clients.py -v

PBI_EMBED_BIN names the pbi-embed binary (default target/debug/pbi-embed).
"""

import base64
import json
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

import msal
import requests
from azure.identity import ClientSecretCredential
from azure.core.exceptions import ClientAuthenticationError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BINARY = os.environ.get("PBI_EMBED_BIN", str(TARGET / "debug" / "pbi-embed"))
SCOPE = "https://analysis.windows.net/powerbi/api/.default"


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Emulator:
    """`pbi-embed emulator --tls` on a free port; its base URL, CA file and fixture ids."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.ca = os.path.join(self.dir.name, "ca.pem")
        self.process = subprocess.Popen(
            [BINARY, "emulator", "--tls", "--tls-ca-out", self.ca, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, text=True)
        first = self.process.stdout.readline()
        assert first.startswith("pbi-embed emulator listening on https://"), first
        self.base = first.split()[-1]
        self.ids = {}
        for line in self.process.stdout:
            if line.startswith("Press Ctrl-C"):
                break
            key, _, value = line.strip().partition(":")
            if value:
                self.ids[key] = value.split()[0]

    def control(self, path):
        return requests.get(f"{self.base}/_emulator/{path}", verify=self.ca, timeout=10).json()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.dir.cleanup()


class MicrosoftClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emulator = Emulator()
        ids = cls.emulator.ids
        cls.tenant, cls.client_id = ids["tenant"], ids["client id"]
        cls.secret, cls.workspace = ids["client secret"], ids["workspace"]
        cls.report = ids["report"]
        cls.host = cls.emulator.base.removeprefix("https://")

    @classmethod
    def tearDownClass(cls):
        cls.emulator.stop()

    def setUp(self):
        # The only trust anchor: the emulator's CA, as the printed instructions say.
        os.environ["REQUESTS_CA_BUNDLE"] = self.emulator.ca

    def tearDown(self):
        os.environ.pop("REQUESTS_CA_BUNDLE", None)

    def msal_app(self):
        # A custom authority host is not one MSAL knows, so it would ask
        # login.microsoftonline.com to validate it: instance discovery off, as
        # azure-identity's disable_instance_discovery does.
        return msal.ConfidentialClientApplication(
            self.client_id, client_credential=self.secret,
            authority=f"{self.emulator.base}/{self.tenant}", instance_discovery=False)

    def check_access_token(self, token):
        """The token is a JWT with Entra's app claims, signed by a key at jwks_uri."""
        header, claims, signature = token.split(".")
        header, claims = json.loads(b64url(header)), json.loads(b64url(claims))
        self.assertEqual(claims["aud"], "https://analysis.windows.net/powerbi/api")
        self.assertEqual(claims["appid"], self.client_id)
        self.assertEqual(claims["tid"], self.tenant)
        self.assertEqual(claims["iss"], f"https://sts.windows.net/{self.tenant}/")
        config = requests.get(
            f"{self.emulator.base}/{self.tenant}/v2.0/.well-known/openid-configuration", timeout=10).json()
        keys = requests.get(config["jwks_uri"], timeout=10).json()["keys"]
        key = next(k for k in keys if k["kid"] == header["kid"])
        public = rsa.RSAPublicNumbers(
            int.from_bytes(b64url(key["e"]), "big"), int.from_bytes(b64url(key["n"]), "big")).public_key()
        signed = token.rsplit(".", 1)[0].encode()
        public.verify(b64url(signature), signed, padding.PKCS1v15(), hashes.SHA256())

    def embed_for_your_customers(self, access_token):
        """Microsoft's App Owns Data sample: GET the report, POST the multi-resource token."""
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + access_token}
        api = f"{self.emulator.base}/v1.0/myorg"
        response = requests.get(f"{api}/groups/{self.workspace}/reports/{self.report}", headers=headers, timeout=10)
        self.assertEqual(response.status_code, 200, response.text)
        report = response.json()
        self.assertTrue(report["embedUrl"].startswith("https://"), report["embedUrl"])
        body = {
            "datasets": [{"id": report["datasetId"]}],
            "reports": [{"id": report["id"]}],
            "targetWorkspaces": [{"id": self.workspace}],
        }
        response = requests.post(f"{api}/GenerateToken", data=json.dumps(body), headers=headers, timeout=10)
        self.assertEqual(response.status_code, 200, response.text)
        token = response.json()
        minted = self.emulator.control(f"tokens/{token['tokenId']}")
        self.assertEqual(minted["operation"], "EmbedToken_GenerateToken")
        self.assertEqual(minted["clientId"], self.client_id)
        granted = {(r["kind"], r["id"]) for r in minted["resources"]}
        self.assertIn(("report", self.report), granted)
        self.assertIn(("dataset", report["datasetId"]), granted)
        return token

    def test_msal_signs_in_and_the_sample_pattern_mints_an_embed_token(self):
        before = self.emulator.control("stats")
        result = self.msal_app().acquire_token_for_client(scopes=[SCOPE])
        self.assertIn("access_token", result, result)
        self.assertEqual(result["token_type"], "Bearer")
        self.check_access_token(result["access_token"])
        self.embed_for_your_customers(result["access_token"])
        after = self.emulator.control("stats")
        self.assertEqual(after["accessTokensIssued"] - before["accessTokensIssued"], 1)
        self.assertGreaterEqual(after["requests"]["Entra_OpenIdConfiguration"], 1)

    def test_msal_reports_entras_error_for_a_wrong_secret(self):
        app = msal.ConfidentialClientApplication(
            self.client_id, client_credential="wrong",
            authority=f"{self.emulator.base}/{self.tenant}", instance_discovery=False)
        result = app.acquire_token_for_client(scopes=[SCOPE])
        self.assertEqual(result.get("error"), "invalid_client", result)
        self.assertIn(7000215, result.get("error_codes", []))

    def test_azure_identity_client_secret_credential(self):
        before = self.emulator.control("stats")["accessTokensIssued"]
        credential = ClientSecretCredential(
            self.tenant, self.client_id, self.secret, authority=self.host, disable_instance_discovery=True)
        access = credential.get_token(SCOPE)
        self.check_access_token(access.token)
        self.embed_for_your_customers(access.token)
        self.assertEqual(self.emulator.control("stats")["accessTokensIssued"] - before, 1)
        wrong = ClientSecretCredential(
            self.tenant, self.client_id, "wrong", authority=self.host, disable_instance_discovery=True)
        with self.assertRaises(ClientAuthenticationError) as raised:
            wrong.get_token(SCOPE)
        self.assertIn("AADSTS7000215", str(raised.exception))

    def test_without_the_emulators_ca_the_certificate_is_refused(self):
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
        with self.assertRaises(requests.exceptions.SSLError):
            self.msal_app().acquire_token_for_client(scopes=[SCOPE])


if __name__ == "__main__":
    unittest.main()
