"""Key material: signing keys, their stores and their rotation."""
