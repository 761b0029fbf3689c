"""paycore-dummy."""
