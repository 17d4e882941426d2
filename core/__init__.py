"""Web plumbing every app shares, at the bottom: it imports no other project package."""
