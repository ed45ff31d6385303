"""The coordinator's rules: who serves which PEKES and topic, the calendar, the ladder.

``load_rules(folder)`` reads the YAML files of a rules folder and returns a validated
``Rules``, or raises ``RulesError`` listing every problem with its file and line.
"""

from .load import RULES_FILES, RulesError, load_rules
from .shapes import Rules

__all__ = ["RULES_FILES", "Rules", "RulesError", "load_rules"]
