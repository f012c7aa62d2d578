# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private directories for what must not be readable by others (key files, the store)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os


def make_private_directory(directory):
    """Create ``directory`` and its missing parents 0700 whatever the umask; raises OSError when it cannot."""
    if os.path.isdir(directory):
        return
    old = os.umask(0o077)
    try:
        os.makedirs(directory, 0o700)
    finally:
        os.umask(old)
