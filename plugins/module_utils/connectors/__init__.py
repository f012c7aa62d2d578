# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Connector registry: ``get_connector(record, context)`` returns the connector for a connection record.

A new system (LDAP, Exchange Online) is one new module in this package implementing ``base.Connector`` plus one
line in ``CONNECTORS``; the sync engine does not change. The imports are static so that Ansible bundles every
connector with the modules that use them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.connectors.azure_ad import AzureAdConnector
from ansible_collections.idsync.entra.plugins.module_utils.connectors.csv import CsvConnector
from ansible_collections.idsync.entra.plugins.module_utils.connectors.ldap.connector import (
    ActiveDirectoryConnector, LdapConnector,
)
from ansible_collections.idsync.entra.plugins.module_utils.connectors.microsoft_365 import Microsoft365Connector
from ansible_collections.idsync.entra.plugins.module_utils.errors import ConfigError

CONNECTORS = {
    "active_directory": ActiveDirectoryConnector,
    "azure_ad": AzureAdConnector,
    "csv": CsvConnector,
    "ldap": LdapConnector,
    "microsoft_365": Microsoft365Connector,
}


def get_connector(record, context=None):
    """The connector instance for ``record`` ({name, connector, settings}); ``context`` as in ``base.Connector``."""
    if not record:
        raise ConfigError("No connection record given")
    kind = record.get("connector")
    cls = CONNECTORS.get(kind)
    if cls is None:
        raise ConfigError("Connection %s uses the connector '%s', which this collection does not know (known: %s)"
                          % (record.get("name"), kind, ", ".join(sorted(CONNECTORS))), option="connection")
    return cls(record, context)
