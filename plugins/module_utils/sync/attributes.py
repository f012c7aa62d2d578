# -*- coding: utf-8 -*-
# Copyright: (c) 2025, idsync.entra contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The values a step writes for one object: its rules in dependency order (a rule may read ``target.X``, the value
computed for attribute X of the same object in the same step), unique values chosen among candidates, and the
target's own limits checked before anything is sent (a value Graph would refuse fails that object in the plan).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.idsync.entra.plugins.module_utils.sync.rules import ReferenceRule, RuleError, UniqueRule
from ansible_collections.idsync.entra.plugins.module_utils.sync.unique import ValueChooser
from ansible_collections.idsync.entra.plugins.module_utils.sync.values import ValueError_, desired_value, to_output


class ObjectError(Exception):
    """One object cannot be planned: ``rule`` names the rule, ``message`` says why (one sentence)."""

    def __init__(self, rule, message):
        self.rule = rule
        self.message = message
        super(ObjectError, self).__init__("%s: %s" % (rule, message))


class AttributeComputer(object):
    """Evaluates the create and update steps of a workflow for one object at a time."""

    def __init__(self, workflow, spec_of, target, object_type):
        self.spec_of = spec_of
        self.target = target
        self.object_type = object_type
        self.create_rules = workflow.create_rules()
        self.create_order = [a for a in workflow.create_order if not isinstance(self.create_rules[a], ReferenceRule)]
        self.update_rules = dict(workflow.update or {})
        self.update_order = [a for a in workflow.update_order if not isinstance(self.update_rules[a], ReferenceRule)]
        self.choosers = {}

    def unique_attributes(self):
        return sorted(a for a, r in self.create_rules.items() if isinstance(r, UniqueRule))

    def prepare_unique(self, object_sets):
        """``object_sets``: {attribute: [{id: object}, ...]} of what occupies each unique attribute's values."""
        for attribute in self.unique_attributes():
            uniqueness = self.target.uniqueness(self.object_type, attribute)
            self.choosers[attribute] = ValueChooser(uniqueness, object_sets.get(attribute, ()))

    # -- steps ----------------------------------------------------------------------------------------------------
    def create_values(self, obj):
        """{attribute: normalised value} for a new object (unique values chosen and reserved)."""
        chosen = []
        try:
            values = self._evaluate(obj, self.create_rules, self.create_order, chosen)
        except ObjectError:
            for attribute, value in chosen:
                self.choosers[attribute].release(value)
            raise
        return values, chosen

    def release(self, chosen):
        for attribute, value in chosen:
            self.choosers[attribute].release(value)

    def update_values(self, obj):
        """{attribute: normalised value} the update step wants for a matched object."""
        return self._evaluate(obj, self.update_rules, self.update_order, None)

    def check(self, values, rules, only=None):
        """Raise ObjectError for the first value the target's limits refuse (``only``: the attributes written)."""
        written = dict((a, to_output(v)) for a, v in values.items() if only is None or a in only)
        for attribute, problem in self.target.check_values(self.object_type, written) if self.target else []:
            rule = rules.get(attribute)
            raise ObjectError(rule.name if rule is not None else attribute, "%s %s" % (attribute, problem))

    # -- plumbing -------------------------------------------------------------------------------------------------
    def _evaluate(self, obj, rules, order, chosen):
        values = {}
        view = {}                         # target.X as expressions see it: plain output values
        for attribute in order:
            rule = rules[attribute]
            spec = self.spec_of(attribute)
            try:
                if isinstance(rule, UniqueRule):
                    value = self._choose(attribute, rule, obj, view, spec, chosen)
                else:
                    value = desired_value(rule.evaluate(obj, None, view), spec)
            except RuleError as exc:
                raise ObjectError(exc.rule, exc.message)
            except ValueError_ as exc:
                raise ObjectError(rule.name, str(exc))
            values[attribute] = value
            view[attribute] = to_output(value)
        return values

    def _choose(self, attribute, rule, obj, view, spec, chosen):
        candidates = []
        for candidate, raw in zip(rule.candidates, rule.evaluate(obj, None, view)):
            try:
                value = desired_value(raw, spec)
            except ValueError_ as exc:
                raise ObjectError(candidate.name, str(exc))
            if value is not None and not isinstance(value, str):
                raise ObjectError(candidate.name, "a unique value is text; the candidate gave %r" % (value,))
            candidates.append(value)
        value = self.choosers[attribute].choose(candidates)
        if value is not None:
            chosen.append((attribute, value))
        return value
