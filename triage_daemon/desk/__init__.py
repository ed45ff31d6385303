"""The helpdesk's work on a ticket after triage: route, assign, relay, group, escalate."""
