"""Offline stand-in for ansible-test's get-pip.py bootstrap script.

ansible-test downloads get-pip from a host outside the package registries these machines reach; its own error
message says the script "can be manually downloaded and saved" to its cache. This stand-in does the same job with
what every CPython ships: pip from ensurepip, then the exact packages ansible-test asks for, from the package index.
"""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap()
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
bundle = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
cert = ["--cert", bundle] if os.path.exists(bundle) else []
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + cert + args))
