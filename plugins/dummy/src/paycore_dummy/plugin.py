"""paycore plugin module."""
