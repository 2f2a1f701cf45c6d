"""The Authorize.net gateway module (see gateway.py)."""
from app.gateways.authorizenet.gateway import AuthorizeNetGateway

GATEWAY = AuthorizeNetGateway
