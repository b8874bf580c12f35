"""E-mail and phone checks, SMS encoding, and the named reasons a message cannot go."""
