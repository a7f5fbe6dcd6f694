"""What people read: the forwarded mail and its notes, Zendesk comments, Slack blocks, in English and Japanese."""
