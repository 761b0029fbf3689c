"""paycore-sqlalchemy."""
