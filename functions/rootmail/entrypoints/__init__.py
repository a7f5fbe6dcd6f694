"""How the world calls in: the Lambda handlers (parse the event, call one use case, return its result), the Slack
app, the command line."""
