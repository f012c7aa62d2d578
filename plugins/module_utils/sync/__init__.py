# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync engine: workflow config (config), rules and expressions (rules), value comparison (values), planning
(plan, pure), applying (apply), the deletion threshold (safety) and one run end to end (engine)."""
