"""Support: tickets and their replies, for the portal and the APIs."""
