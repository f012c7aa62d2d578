# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Active Directory and generic LDAP v3 connectors, split by responsibility:

``names``     DNs (RFC 4514), filter values (RFC 4515), objectGUID          pure
``schema``    the two dialects: object types, attributes, value conversion   pure
``settings``  connection settings validation                                 pure
``session``   ldap3 connection: servers, TLS, bind, paged/ranged reads, writes, error sentences
``delta``     incremental reads (uSNChanged / entryCSN) against a snapshot in the store
``connector`` LdapConnector / ActiveDirectoryConnector (base.Connector)
``probe``     "Test connection"
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type
