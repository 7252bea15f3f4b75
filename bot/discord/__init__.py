"""The Discord front end: slash commands, persistent alert buttons, and paced delivery of deal alerts."""
