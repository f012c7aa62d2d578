#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: certificate
short_description: Ensure a connector certificate and private key on disk
version_added: "0.1.0"
description:
  - Ensures a self-signed certificate and its private key exist at the given paths, for an Entra application's
    certificate credential (app-only sign-in of the sync connector).
  - A valid existing pair is reused. The pair is regenerated when a file is missing or unreadable, the key does not
    match the certificate, the subject, key type or key size differ from what is asked, or the certificate expires
    within O(renew_before_days).
  - Files holding the private key are written with mode V(0600) atomically (a V(0600) temporary file in the same
    directory is renamed over the target, so the key is never readable by others, not even for a moment). The
    certificate alone is written with mode V(0644).
  - Returns the SHA-1 thumbprint as the Azure portal shows it and the public certificate; never the private key.
author:
  - idsync.entra maintainers (@idsync)
options:
  certificate_path:
    description:
      - Path of the PEM certificate.
      - When O(private_key_path) is omitted, this one PEM file holds the private key followed by the certificate,
        and is written with mode V(0600).
    type: path
    required: true
  private_key_path:
    description:
      - Path of the PEM private key (PKCS#8). Written with mode V(0600).
      - Omit to keep the key and the certificate in one file at O(certificate_path).
    type: path
  key_type:
    description:
      - Type of the key pair.
      - Microsoft Entra ID certificate credentials (client assertions) use RSA, so keep V(rsa) for a connector
        certificate.
    type: str
    choices: [rsa, ec]
    default: rsa
  key_size:
    description:
      - RSA modulus size in bits (default V(2048), at least V(2048)), or the EC curve size (V(256), V(384) or V(521),
        default V(256)).
    type: int
  subject:
    description:
      - Subject (and issuer) distinguished name, as V(CN=name,O=org) or V(/O=org/CN=name).
    type: str
    default: CN=idsync.entra connector
  valid_days:
    description:
      - Validity of a newly created certificate, in days from now.
    type: int
    default: 730
  renew_before_days:
    description:
      - Regenerate the pair when the certificate expires within this many days.
      - Must be less than O(valid_days).
    type: int
    default: 30
  passphrase:
    description:
      - Encrypts the private key PEM (and the PFX export). Needed to read an existing encrypted key.
      - When given for an existing unencrypted key, the same key is re-written encrypted (the certificate and its
        thumbprint stay the same).
    type: str
    aliases: [private_key_passphrase]
  pfx_path:
    description:
      - Also export the key and certificate as PKCS#12 (PFX) to this path, mode V(0600), encrypted with
        O(passphrase) when given.
    type: path
  force:
    description:
      - Regenerate the pair even when the existing one is valid.
      - Also replaces an existing key that cannot be decrypted with the given O(passphrase).
    type: bool
    default: false
  state:
    description:
      - V(present) ensures the pair; V(absent) removes O(certificate_path), O(private_key_path) and O(pfx_path).
    type: str
    choices: [present, absent]
    default: present
  store:
    description:
      - Not used by this module. Accepted so that C(module_defaults) for the action group C(group/idsync.entra.all)
        can set O(store) once for a play that also ensures a certificate.
    type: path
attributes:
  check_mode:
    support: full
    description: Reports what would change (C(changed) and C(reason)) and writes nothing.
  diff_mode:
    support: full
    description: Shows the thumbprint, expiry, subject, key type and key size before and after.
requirements:
  - cryptography >= 42
notes:
  - Register the certificate on the application with M(idsync.entra.app_registration) (it takes RV(certificate))
    or upload the PEM certificate under Certificates & secrets in the Azure portal.
  - A renewed certificate has a new thumbprint; the application keeps working only once the new certificate is
    registered. Rotate with a new path and M(idsync.entra.app_registration) C(certificate_mode=add) to keep the old
    key valid until the new one is proven.
seealso:
  - module: idsync.entra.connection
"""

EXAMPLES = r"""
- name: Ensure the connector certificate (key and certificate in separate files)
  idsync.entra.certificate:
    certificate_path: /etc/idsync/connector.crt
    private_key_path: /etc/idsync/connector.key
  register: connector_cert

- name: Show the thumbprint as the Azure portal shows it
  ansible.builtin.debug:
    msg: "Certificate thumbprint {{ connector_cert.thumbprint }}, valid until {{ connector_cert.not_after }}"

- name: One PEM file holding key and certificate, 3072-bit, with a PFX export for Windows tools
  idsync.entra.certificate:
    certificate_path: ~/.idsync/connector.pem
    key_size: 3072
    subject: CN=idsync connector,O=Contoso
    valid_days: 365
    renew_before_days: 45
    passphrase: "{{ vault_connector_key_passphrase }}"
    pfx_path: ~/.idsync/connector.pfx

- name: Remove the files
  idsync.entra.certificate:
    certificate_path: /etc/idsync/connector.crt
    private_key_path: /etc/idsync/connector.key
    state: absent
"""

RETURN = r"""
thumbprint:
  description: SHA-1 thumbprint of the certificate, upper-case hex without separators, as the Azure portal shows it.
    V(null) in check mode when a new certificate would be created.
  returned: state=present
  type: str
  sample: 0F3A9C1E5D7B2A4C6E8F0A1B2C3D4E5F60718293
thumbprint_sha256:
  description: SHA-256 thumbprint, upper-case hex without separators.
  returned: state=present
  type: str
  sample: 9C1E5D7B2A4C6E8F0A1B2C3D4E5F607182930F3A9C1E5D7B2A4C6E8F0A1B2C3D
not_before:
  description: Start of validity (UTC, ISO 8601).
  returned: state=present
  type: str
  sample: "2025-01-01T00:00:00Z"
not_after:
  description: End of validity (UTC, ISO 8601).
  returned: state=present
  type: str
  sample: "2027-01-01T00:00:00Z"
subject:
  description: Subject distinguished name (RFC 4514).
  returned: state=present
  type: str
  sample: CN=idsync.entra connector
key_type:
  description: Key type of the pair.
  returned: state=present
  type: str
  sample: rsa
key_size:
  description: RSA modulus or EC curve size in bits.
  returned: state=present
  type: int
  sample: 2048
certificate:
  description: The public certificate in PEM. Never the private key.
  returned: state=present
  type: str
  sample: "-----BEGIN CERTIFICATE-----\nMIIC...\n-----END CERTIFICATE-----\n"
certificate_base64:
  description: Base64 of the DER certificate, the value Microsoft Graph takes in C(keyCredentials[].key).
  returned: state=present
  type: str
  sample: MIIC8jCCAdqgAwIBAgIU...
certificate_path:
  description: Absolute path of the certificate file.
  returned: state=present
  type: str
  sample: /etc/idsync/connector.crt
private_key_path:
  description: Absolute path of the file holding the private key (the certificate path for a combined PEM).
  returned: state=present
  type: str
  sample: /etc/idsync/connector.key
pfx_path:
  description: Absolute path of the PFX export, when asked for.
  returned: state=present
  type: str
  sample: /etc/idsync/connector.pfx
reason:
  description: Why the task changed something (or would, in check mode), or why it did not.
  returned: always
  type: str
  sample: "create the key and certificate: no certificate at /etc/idsync/connector.crt"
removed:
  description: Files removed (or that would be removed in check mode).
  returned: state=absent
  type: list
  elements: str
  sample: [/etc/idsync/connector.crt, /etc/idsync/connector.key]
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.idsync.entra.plugins.module_utils.errors import IdsyncError
from ansible_collections.idsync.entra.plugins.module_utils import keypair


def main():
    module = AnsibleModule(
        argument_spec=dict(
            certificate_path=dict(type="path", required=True),
            private_key_path=dict(type="path", no_log=False),
            key_type=dict(type="str", choices=["rsa", "ec"], default="rsa", no_log=False),
            key_size=dict(type="int", no_log=False),
            subject=dict(type="str", default=keypair.DEFAULT_SUBJECT),
            valid_days=dict(type="int", default=730),
            renew_before_days=dict(type="int", default=30),
            passphrase=dict(type="str", no_log=True, aliases=["private_key_passphrase"]),
            pfx_path=dict(type="path"),
            force=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            store=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    if not keypair.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=keypair.CRYPTOGRAPHY_IMPORT_ERROR)
    try:
        result = keypair.ensure_certificate(module.params, check_mode=module.check_mode)
    except IdsyncError as exc:
        module.fail_json(msg=exc.msg, error=exc.to_result())
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="Unexpected error ensuring the certificate: %s" % exc, exception=traceback.format_exc())
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
