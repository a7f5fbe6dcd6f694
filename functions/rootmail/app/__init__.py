"""Use cases, one module per thing the product does: the triage steps, the operators' Slack commands, the audit,
bounces, the accounts sync, the rules preview, offline triage. They ask the domain to decide and the adapters to
fetch and store."""
