# -*- coding: utf-8 -*-
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin for idsync.entra.app_registration: optional device code admin sign-in on the controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.idsync.entra.plugins.plugin_utils.admin_sign_in import AdminSignInAction


class ActionModule(AdminSignInAction):
    pass
