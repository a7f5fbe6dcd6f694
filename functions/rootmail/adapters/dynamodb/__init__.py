"""DynamoDB tables, one module each: the ledger, the accounts, the live rules, Slack requests, the delivery
guard; items.py holds what they share."""
