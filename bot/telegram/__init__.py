"""The Telegram front end: chat commands, photo alerts with buttons, and flood-control-safe delivery."""
