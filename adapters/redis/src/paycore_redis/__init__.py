"""paycore-redis."""
