"""Chat front ends and the platform-neutral command layer they share."""
