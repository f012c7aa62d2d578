"""extensions/awx/credential_type.yml is a credential type AWX accepts, whose injectors give the collection what it
reads: every template names a declared field, every secret is marked secret, nothing is injected as an extra
variable (extra variables show in a job's details)."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TYPE = yaml.safe_load((ROOT / "extensions" / "awx" / "credential_type.yml").read_text())
READ_BY_THE_COLLECTION = {"AZURE_TENANT_ID", "IDSYNC_CLIENT_CERTIFICATE", "IDSYNC_CLIENT_PRIVATE_KEY",
                          "AZURE_CLIENT_CERTIFICATE_PASSWORD", "IDSYNC_STORE", "PGPASSWORD"}


def test_shape_fields_and_secrets():
    assert TYPE["kind"] == "cloud" and TYPE["name"]
    fields = dict((f["id"], f) for f in TYPE["inputs"]["fields"])
    assert set(TYPE["inputs"]["required"]) <= set(fields)
    env = TYPE["injectors"]["env"]
    assert set(env) == READ_BY_THE_COLLECTION
    assert "extra_vars" not in TYPE["injectors"]
    for variable, template in env.items():
        names = re.findall(r"{{\s*(\w+)\s*}}", template)
        assert names and all(n in fields for n in names), variable
    for secret in ("certificate", "private_key", "private_key_passphrase", "store_password"):
        assert fields[secret].get("secret") is True, secret
    assert not any(v.startswith("ANSIBLE_") for v in env)           # reserved by AWX
