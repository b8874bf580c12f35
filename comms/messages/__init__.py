"""Messages before they leave: generate for many recipients, compose one, edit, history."""
