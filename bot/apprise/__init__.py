"""Alerts to any notification service Apprise speaks (ntfy, Slack, Matrix, Pushover, webhooks...)."""
