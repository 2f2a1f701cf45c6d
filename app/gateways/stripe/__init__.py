"""The Stripe gateway module (see gateway.py)."""
from app.gateways.stripe.gateway import StripeGateway

GATEWAY = StripeGateway
