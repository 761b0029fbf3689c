"""paycore-cash."""
