"""The triage steps, one per task state of statemachine/triage.asl.json. Each takes the execution's state (typed,
validated by its handler) and the container's services, does one thing, and returns what the next state needs (keys
and summaries, never whole mails). What is decided, the domain decides (triage, routing, outcome).

intake.py      ingest's start, Parse, Resolve (and ResolveAgain), RefreshAccounts, Classify
deliveries.py  Forward, Ticket, Escalate, AlertOperators: each side effect at most once, through the delivery guard
record.py      Record: the terminal state in the ledger
"""
