"""Private helpers shared across skdistill; nothing here is public API."""
